"""The steps around predict - retrieve every instance, store every object written - and the ledger
that records each item's outcome, for the summary table and ``OUT/dicomweb.csv``.

The prediction itself is not here: ``dicomweb`` sits beside ``serve`` in the layer contract, so the
command passes ``predict_files`` in (DESIGN.md: a thin layer query -> retrieve -> predict -> store
over ``predict``). Nothing stops on one bad item: a failed retrieve or store is a ledger row with the
server's reason, and the command's exit code says whether any row failed.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from chestxai.atomic import atomic_path
from chestxai.dicomweb.connection import DicomwebError, Server
from chestxai.dicomweb.query import InstanceRef
from chestxai.dicomweb.transfer import retrieve, store

#: OUT/dicomweb.csv, one row per item and step (docs: README "DICOMweb")
COLUMNS = ("step", "object", "uid", "source", "file", "status", "reason")
STEPS = ("query", "retrieve", "predict", "store")
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: the keys of predict_files' result["dicom"] entries that name a written DICOM object, in store order
OBJECT_KINDS = ("sr", "pmap", "pr")


@dataclass
class Ledger:
    rows: list[dict[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step, for the summary

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start

    def add(
        self, step: str, obj: str, uid: str, status: str, reason: str = "", source: str = "", file: str = ""
    ) -> None:
        self.rows.append(
            {"step": step, "object": obj, "uid": uid, "source": source, "file": file, "status": status,
             "reason": reason}
        )  # fmt: skip

    def count(self, status: str, step: str | None = None) -> int:
        return sum(r["status"] == status and step in (None, r["step"]) for r in self.rows)

    def write(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def table(self, limit: int = 20) -> str:
        """The summary: done / skipped / failed and seconds per step, then the first ``limit`` failures."""
        counts = Counter((r["step"], r["status"]) for r in self.rows)
        lines = [f"{'step':<10}{DONE:>6}{SKIPPED:>9}{FAILED:>8}{'seconds':>9}"]
        for step in STEPS:
            took = f"{self.seconds[step]:.2f}" if step in self.seconds else "-"
            lines.append(
                f"{step:<10}{counts[step, DONE]:>6}{counts[step, SKIPPED]:>9}{counts[step, FAILED]:>8}{took:>9}"
            )
        failures = [r for r in self.rows if r["status"] == FAILED]
        if failures:
            lines.append(f"{len(failures)} failed:")
            lines += [f"  {r['step']} {r['object']} {r['uid']}: {r['reason']}" for r in failures[:limit]]
            if len(failures) > limit:
                lines.append(f"  ... and {len(failures) - limit} more")
        return "\n".join(lines)


def retrieve_all(
    server: Server, refs: Iterable[InstanceRef], folder: Path, ledger: Ledger, progress: bool = True
) -> dict[str, InstanceRef]:
    """Fetch every instance into ``folder``; returns {local path: its reference} of those fetched."""
    refs = list(refs)
    fetched: dict[str, InstanceRef] = {}
    for ref in tqdm(refs, desc="retrieve", unit="inst", disable=not progress):
        try:
            path = retrieve(server, ref, folder)
        except DicomwebError as exc:
            ledger.add("retrieve", "instance", ref.sop, FAILED, str(exc), source=ref.url(server.url))
            continue
        fetched[str(path)] = ref
        ledger.add("retrieve", "instance", ref.sop, DONE, source=ref.url(server.url))
    return fetched


def store_all(
    server: Server,
    written: Iterable[dict],
    sources: dict[str, InstanceRef],
    ledger: Ledger,
    progress: bool = True,
) -> None:
    """STOW every object predict wrote (``result["dicom"]``: {"source", "sr", "pmap", "pr"}), one
    request each, each outcome a ledger row."""
    jobs = [(entry, kind, Path(entry[kind])) for entry in written for kind in OBJECT_KINDS if entry.get(kind)]
    for entry, kind, path in tqdm(jobs, desc="store", unit="obj", disable=not progress):
        ref = sources.get(str(entry.get("source")))
        outcome = store(server, path)
        ledger.add(
            "store",
            kind,
            outcome.sop,
            DONE if outcome.stored else FAILED,
            outcome.reason,
            source=ref.url(server.url) if ref else str(entry.get("source", "")),
            file=str(path),
        )

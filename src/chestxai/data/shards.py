"""``prepare --shard K/N`` and ``prepare --merge-shards N``: one cache prepared by N array jobs.

Why: decoding 112k (NIH) to 377k (MIMIC-CXR) images takes hours on one machine, and a cluster
runs N jobs of an array at once. Each job prepares one shard; a last step merges them into the
one cache a single ``prepare`` would have written (same key, same directory, the same bytes in
``images.u8``, ``index.csv`` and ``labels.npy``).

* **A deterministic share.** Shard K (counting from 1) of N takes the contiguous block
  ``[total * (K-1) // N, total * K // N)`` of the image rows and the same block of the mask rows:
  it depends on K, N and the table only, never on which job starts first. Blocks, not strides,
  keep each job reading neighbouring files.
* **Beside the cache.** Shard K's resumable work state (:class:`~.work_state.WorkState` over its
  :class:`~.work_state.Span`) lives in ``<cache>.shards/shard-KKKK-of-NNNN/``, locked while it is
  written (:func:`chestxai.locks.exclusive`); ``done.json`` is written last and marks it whole,
  with the items it could not decode. A killed shard resumes where it stopped.
* **An explicit merge** (``--merge-shards N``, a job that depends on the array, e.g. SLURM
  ``--dependency=afterok:JOBID``) rather than "the last shard merges": a shard cannot tell that it
  is last when another one crashed or was requeued, and a failed merge re-runs alone without
  redoing any shard. The merge locks the cache and every shard, names the shards missing or
  unfinished, copies every shard's rows, status bytes and reasons into the cache's work state and
  finishes it with the writer ``prepare`` uses (:func:`~.prepare.finish`): the skipped items of
  every shard land in the one ``prepare_report.json``. The shard area is removed after
  ``meta.json``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.atomic import write_text
from chestxai.data.decode import DecodeSettings
from chestxai.data.prepare import (
    Plan,
    PrepareError,
    clear,
    decode_plan,
    finish,
    finished,
    plan,
    prepare,
    reuse,
)
from chestxai.data.table import ImageTable
from chestxai.data.work_state import OK, Span, WorkState
from chestxai.locks import LockedError, exclusive, is_locked

log = logging.getLogger(__name__)

DONE = "done.json"
AREA_SUFFIX = ".shards"
_SHARD_DIR = re.compile(r"shard-(\d+)-of-(\d+)")


def prepare_sharded(
    source: str | ImageTable,
    root: str | Path | None = None,
    *,
    shard: tuple[int, int] | str | None = None,
    merge_shards: int | None = None,
    size: int = 224,
    out: str | Path | None = None,
    workers: int | None = None,
    strict: bool = False,
    options: dict[str, Any] | None = None,
    decode: DecodeSettings | None = None,
    force: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """The entry of ``chestxai prepare``: one shard, the merge of N shards, or (neither given) the
    one-process :func:`~chestxai.data.prepare.prepare`, whose arguments the others take too.

    ``shard=(K, N)`` (or ``"K/N"``, K counting from 1) decodes only shard K's share into the
    shard area beside the cache and returns the shard's folder; ``merge_shards=N`` then merges
    the N finished shards into the cache, byte-identical to a one-process run, and returns it.
    """
    if shard is None and merge_shards is None:
        return prepare(
            source, root, size=size, out=out, workers=workers, strict=strict, options=options,
            decode=decode, force=force, progress=progress, on_progress=on_progress,
        )  # fmt: skip
    if shard is not None and merge_shards is not None:
        raise ValueError("--shard and --merge-shards exclude each other: run the shards, then merge")
    shard = parse_shard(shard) if shard is not None else None  # a bad K/N fails before any reading
    p = plan(source, root, size, out, options, decode)
    if shard is not None:
        return prepare_shard(
            p, shard, workers=workers, force=force, progress=progress, on_progress=on_progress
        )
    return merge(p, merge_shards, strict=strict, force=force, progress=progress)


def parse_shard(spec: str | tuple[int, int]) -> tuple[int, int]:
    """``"K/N"`` or ``(K, N)`` -> ``(K, N)``, checked: ``1 <= K <= N`` (shards count from 1)."""
    if isinstance(spec, str):
        k_text, sep, n_text = spec.strip().partition("/")
        try:
            k, n = int(k_text), int(n_text)
        except ValueError:
            k = n = None
        if not sep or k is None:
            raise ValueError(
                f"--shard {spec!r}: expected K/N with whole numbers, e.g. --shard 1/4 (shards count from 1)"
            )
    else:
        k, n = (int(x) for x in spec)
    if n < 1:
        raise ValueError(f"--shard {k}/{n}: N, the number of shards, must be at least 1")
    if not 1 <= k <= n:
        raise ValueError(
            f"--shard {k}/{n}: K must be between 1 and {n} (shards count from 1; in SLURM use "
            f"--array=1-{n} and --shard $SLURM_ARRAY_TASK_ID/{n})"
        )
    return k, n


def block(k: int, n: int, total: int) -> tuple[int, int]:
    """Shard ``k`` of ``n``'s contiguous block of ``total`` rows (blocks differ by at most one row)."""
    return total * (k - 1) // n, total * k // n


def shard_span(k: int, n: int, n_images: int, n_masks: int) -> Span:
    return Span(block(k, n, n_images), block(k, n, n_masks))


def shard_area(target: Path) -> Path:
    """``<cache>.shards/``: beside the cache directory, named after it (so after the inputs' key)."""
    return target.with_name(target.name + AREA_SUFFIX)


def shard_dir(target: Path, k: int, n: int) -> Path:
    return shard_area(target) / f"shard-{k:04d}-of-{n:04d}"


def prepare_shard(
    p: Plan,
    shard: str | tuple[int, int],
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Decode shard K of N of ``p`` into its folder and return the folder (the cache directory
    itself when the merged cache is already finished: nothing left to do)."""
    k, n = parse_shard(shard)
    if not force and finished(p.target, p.key):
        log.info("%s is already merged and complete; shard %d/%d has nothing to do", p.target, k, n)
        return p.target
    groups = p.groups
    span = shard_span(k, n, len(p.table), len(groups))
    folder = shard_dir(p.target, k, n)
    try:
        with exclusive(folder, f"shard {k}/{n} of prepared cache"):
            if force:
                clear(folder)
            elif is_done(folder, p.key, span):
                return folder
            started = time.perf_counter()
            state = WorkState(folder, p.key, len(p.table), len(groups), p.size, span)
            decode_plan(p, state, groups, workers, f"{p.table.source} shard {k}/{n}", progress, on_progress)
            _write_done(folder, p, state, groups, (k, n), time.perf_counter() - started)
            state.close()
    except LockedError as exc:
        raise LockedError(f"{exc}. Another job is running shard {k}/{n} of the same inputs") from None
    return folder


def is_done(folder: Path, key: str, span: Span) -> bool:
    path = folder / DONE
    if not path.exists():
        return False
    done = json.loads(path.read_text())
    return done.get("key") == key and done.get("span") == span.as_dict()


def _write_done(
    folder: Path, p: Plan, state: WorkState, groups: list, shard: tuple[int, int], seconds: float
):
    status, index, reasons = np.asarray(state.status), state.item_indices(), state.reasons()
    frame, n = p.table.frame, state.n
    skipped = []
    for i in index[status != OK].tolist():
        if i < n:
            entry = {"row": i, "image_id": str(frame["image_id"].iloc[i]), "path": str(frame["path"].iloc[i])}
        else:
            entry = {"mask": i - n, "image_id": str(groups[i - n][0]), "label": str(groups[i - n][1])}
        skipped.append({**entry, "reason": reasons.get(i, "unknown")})
    record = {
        "key": p.key,
        "cache": p.target.name,
        "shard": list(shard),
        "span": state.span.as_dict(),
        "n_items": state.n_items,
        "n_ok": int(np.sum(status == OK)),
        "skipped": skipped,
        "seconds": round(seconds, 2),
    }
    write_text(folder / DONE, json.dumps(record, indent=1))


def shard_summary(folder: str | Path) -> str:
    """What ``prepare --shard`` prints: the share, what decoded, what was skipped, what to run next."""
    folder = Path(folder)
    done = json.loads((folder / DONE).read_text())
    (k, n), span = done["shard"], done["span"]
    (a0, a1), (b0, b1) = span["images"], span["masks"]
    masks = f", masks {b0}-{b1 - 1}" if b1 > b0 else ""
    rows = f"image rows {a0}-{a1 - 1}" if a1 > a0 else "no image rows"
    lines = [
        f"shard {k}/{n} of {done['cache']}: {rows}{masks}; {done['n_ok']} of {done['n_items']} items decoded"
        f" -> {folder}"
    ]
    skipped = done["skipped"]
    if skipped:
        lines.append(
            f"skipped {len(skipped)} item(s) (listed in {folder / DONE}; merged into the cache's report):"
        )
        lines += [f"  {s.get('path') or s['image_id']}: {s['reason']}" for s in skipped[:10]]
        if len(skipped) > 10:
            lines.append(f"  ... and {len(skipped) - 10} more")
    lines.append(
        f"when all {n} shards are done: the same prepare command with --merge-shards {n} instead of --shard"
    )
    return "\n".join(lines)


def merge(
    p: Plan, n_shards: int, *, strict: bool = False, force: bool = False, progress: bool = True
) -> Path:
    """Merge the ``n_shards`` finished shards of ``p`` into its cache and return the cache directory."""
    n = int(n_shards)
    if n < 1:
        raise ValueError(f"--merge-shards {n_shards}: the number of shards must be at least 1")
    target, key = p.target, p.key
    if not force and finished(target, key):
        _tidy(target)
        return reuse(target, key, strict)
    groups = p.groups
    spans = [shard_span(k, n, len(p.table), len(groups)) for k in range(1, n + 1)]
    folders = [shard_dir(target, k, n) for k in range(1, n + 1)]
    _check_all_done(target, key, folders, spans)
    with ExitStack() as held:
        try:
            held.enter_context(exclusive(target, "prepared cache"))
        except LockedError as exc:
            raise LockedError(
                f"{exc}. It is preparing or merging the same inputs: re-run when it is done"
            ) from None
        for k, folder in enumerate(folders, 1):
            try:
                held.enter_context(exclusive(folder, f"shard {k}/{n} of prepared cache"))
            except LockedError as exc:
                raise LockedError(
                    f"{exc}: shard {k}/{n} is still being written; merge when it is done"
                ) from None
        if not force and finished(target, key):  # another merge finished meanwhile
            return reuse(target, key, strict, locked=True)
        _check_all_done(target, key, folders, spans, held=True)
        if force:
            clear(target)
        started = time.perf_counter()
        state = WorkState(target, key, len(p.table), len(groups), p.size)
        from tqdm.auto import tqdm

        for folder, span in tqdm(
            list(zip(folders, spans, strict=True)), desc="merge shards", unit="shard", disable=not progress
        ):
            part = WorkState(folder, key, len(p.table), len(groups), p.size, span)
            state.absorb(part)
            part.close()
        finish(p, state, groups, strict, time.perf_counter() - started)
        shutil.rmtree(shard_area(target), ignore_errors=True)
    return target


def _check_all_done(
    target: Path, key: str, folders: list[Path], spans: list[Span], held: bool = False
) -> None:
    """Every shard finished, or an error naming the missing, running and unfinished ones.
    ``held``: this process holds the shards' locks (none can be running)."""
    n = len(folders)
    absent = [k for k, f in enumerate(folders, 1) if not f.exists()]
    running = [] if held else [k for k, f in enumerate(folders, 1) if f.exists() and is_locked(f)]
    stopped = [
        k
        for k, (f, s) in enumerate(zip(folders, spans, strict=True), 1)
        if k not in absent and k not in running and not is_done(f, key, s)
    ]
    if not (absent or running or stopped):
        return
    area = shard_area(target)
    parts = []
    if absent:
        parts.append(f"missing (never started here): {_numbers(absent)}")
    if running:
        parts.append(f"still running: {_numbers(running)}")
    if stopped:
        parts.append(f"unfinished (stopped or killed; re-run to resume): {_numbers(stopped)}")
    hint = ""
    others = sorted(
        {int(m.group(2)) for d in area.glob("shard-*") if (m := _SHARD_DIR.fullmatch(d.name))} - {n}
    )
    if others:
        hint = f" The shard area holds shards of N={', '.join(map(str, others))}: merge with that N."
    elif not area.exists():
        hint = f" No shard of these inputs exists ({area} is absent): did the inputs or options change?"
    raise PrepareError(
        f"cannot merge {n} shards into {target}: shard(s) {'; '.join(parts)} (of {n}, counted from 1, in "
        f"{area}). Run the same prepare command with --shard K/{n} for each missing or unfinished K (wait for "
        f"running ones), then merge again.{hint}"
    )


def _numbers(ks: list[int]) -> str:
    return ", ".join(map(str, ks))


def _tidy(target: Path) -> None:
    """Remove a shard area left by a merge killed after ``meta.json`` (skipped while someone holds it)."""
    area = shard_area(target)
    if not area.exists():
        return
    try:
        with exclusive(target, "prepared cache"):
            shutil.rmtree(area, ignore_errors=True)
    except LockedError:
        pass

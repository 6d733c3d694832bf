"""``chestxai dicomweb``: query a DICOMweb server, predict and explain its radiographs, and store the
SR and Parametric Map back into their studies.

A thin layer over ``predict`` (DESIGN.md, Phase 3 additions): QIDO-RS finds the instances
(:mod:`chestxai.dicomweb.query`), WADO-RS fetches each into a private folder that is removed at the
end, :func:`chestxai.serve.predict_files.predict_files` writes the CSV and the DICOM objects exactly
as ``predict --dicom-out`` does, and ``--store`` sends each object back with STOW-RS, one request per
object (:mod:`chestxai.dicomweb.transfer`). Everything that happened is in ``OUT/dicomweb.csv`` and
the summary table; the exit code is 1 when any retrieve or store failed.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chestxai.commands._common import add_common_flags, switch
from chestxai.commands._flags import usage_type

if TYPE_CHECKING:
    from chestxai.rundir import DicomwebDir

EPILOG = """\
examples:
  chestxai dicomweb runs/nih-d121 --url http://localhost:8042/dicom-web --study 1.2.3.4 --out results/
  chestxai dicomweb runs/nih-d121 --url https://pacs.example.org/dicom-web --since 2024-05-01 --store
  CHESTXAI_DICOMWEB_TOKEN=... chestxai dicomweb runs/nih-d121 --url https://... --series 1.2.3.4.5 --store

QIDO-RS finds the series of the study / series / studies since DATE whose Modality is one of
--modality (default CR,DX; others, e.g. the SR series of an earlier --store, are listed as skipped;
naming another modality also lets predict take it). WADO-RS fetches each instance (uncompressed
when the server can transcode) into a temporary folder removed at the end. OUT/ receives
predictions.csv and predictions.skipped.csv as predict writes them (path = the instance's WADO-RS
URL), the heatmaps in predictions-METHOD/, the SR and Parametric Map of each image in dicom/, and
dicomweb.csv: one row per item and step (step, object, uid, source, file, status, reason). --store
sends every object back with STOW-RS, one request per object, each reported stored or failed with
the server's reason. Exit code 1 when anything failed.
Credentials come from the environment, never from flags: CHESTXAI_DICOMWEB_TOKEN (bearer) or
CHESTXAI_DICOMWEB_USER and CHESTXAI_DICOMWEB_PASSWORD (basic). TLS certificates are always verified
(--ca-bundle FILE for a private CA). Connection errors, timeouts, 429 and 5xx answers are tried again
--retries times with a doubling wait; 401/403/404 end the command with one line saying the fix.
Needs the [dicom] extra. Research software, not for clinical use.
"""


def _uid(flag: str):
    def parse(text: str) -> str:
        from chestxai.dicomweb.query import check_uid  # pydicom: imported on use, not at --help

        return check_uid(text, flag)

    parse.__name__ = "UID"
    return usage_type(parse)


def _since(text: str) -> str:
    from chestxai.dicomweb.query import parse_since

    return parse_since(text)


def _modalities(text: str) -> tuple[str, ...]:
    from chestxai.dicomweb.query import parse_modalities

    return parse_modalities(text)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dicomweb",
        help="predict the radiographs of a DICOMweb server (QIDO/WADO) and store SR + heatmap back (STOW)",
        description="Query a DICOMweb server, predict and explain RUN on the instances found, and with "
        "--store send the DICOM SR and Parametric Map back into their studies.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run directory holding checkpoint.pt")
    p.add_argument("--url", required=True, help="the DICOMweb root, e.g. http://localhost:8042/dicom-web")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", type=_uid("--study"), metavar="UID", help="every instance of this study")
    which.add_argument("--series", type=_uid("--series"), metavar="UID", help="every instance of this series")
    which.add_argument(
        "--since", type=usage_type(_since), metavar="DATE", help="every study from DATE (YYYY-MM-DD) on"
    )
    switch(p, "--store", "send the SR and Parametric Map back to the server (STOW-RS)")
    p.add_argument(
        "--out", default="dicomweb-out", metavar="DIR", help="local results (default dicomweb-out)"
    )
    p.add_argument(
        "--modality",
        type=usage_type(_modalities),
        default=("CR", "DX"),
        metavar="LIST",
        help="modalities to predict, comma-separated (default CR,DX)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection and read (default 30)")
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="further tries after a connection error, timeout, 429 or 5xx (default 3)",
    )
    p.add_argument(
        "--ca-bundle",
        default=None,
        metavar="FILE",
        help="PEM file of the CA that signed the server's certificate",
    )
    p.add_argument(
        "--explain",
        default=None,
        metavar="METHOD",
        help="heatmap method for the Parametric Map (default: predict --dicom-out's, gradcam)",
    )
    switch(p, "--presentation-state", "also write and store a presentation state with the boxes")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward (default 64)")
    switch(p, "--force", "replace results in OUT this command did not write")
    add_common_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.atomic import staging_dir
    from chestxai.dicomweb.connection import Server, ServerSettings
    from chestxai.dicomweb.query import DEFAULT_MODALITIES, find_instances
    from chestxai.dicomweb.roundtrip import DONE, FAILED, SKIPPED, Ledger, retrieve_all, store_all
    from chestxai.rundir import DicomwebDir, RunDir
    from chestxai.rundir.guard import refuse_while_training

    refuse_while_training(args.run, "predict with it")
    run = RunDir(args.run)
    if not run.is_ensemble:
        run.require_checkpoint()  # before any request to the server
    out = DicomwebDir(args.out)
    ledger_path = _check_out(out, args.force)
    settings = ServerSettings(
        args.url,
        timeout=args.timeout,
        retries=args.retries,
        ca_bundle=Path(args.ca_bundle) if args.ca_bundle else None,
    )
    server = Server(settings)
    progress = not args.no_progress
    ledger = Ledger()
    with ledger.timed("query"):
        found = find_instances(server, args.study, args.series, args.since, args.modality)
    for s in found.skipped:
        ledger.add("query", "series", s["series"], SKIPPED, s["reason"])
    for ref in found.instances:
        ledger.add("query", "instance", ref.sop, DONE, source=ref.url(server.url))
    lines = [f"{server.url}: {len(found.instances)} instance(s) of modality {','.join(args.modality)}"]
    staging = staging_dir(out.root / "instances") if found.instances else None
    sources: dict = {}
    try:
        with ledger.timed("retrieve"):
            sources = retrieve_all(server, found.instances, staging, ledger, progress) if staging else {}
        if sources:
            forced = any(m not in DEFAULT_MODALITIES for m in args.modality)
            with ledger.timed("predict"):  # the model's load included
                result = _predict(args, out, list(sources), forced, progress)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if sources:
        by_name = {Path(p).name: ref for p, ref in sources.items()}
        _record_predictions(result, by_name, ledger, server.url)
        _rename_paths(result, by_name, server.url)
        lines.append(f"predictions -> {result['out']}; DICOM objects -> {out.dicom}")
        if args.store:
            with ledger.timed("store"):
                store_all(server, result.get("dicom", []), _by_path(result, by_name), ledger, progress)
        else:
            lines.append("not stored (pass --store to send the SR and Parametric Map to the server)")
    ledger.write(ledger_path)
    lines += [ledger.table(), f"every item: {ledger_path}"]
    print("\n".join(lines))
    return 1 if ledger.count(FAILED) else 0


def _check_out(out: DicomwebDir, force: bool) -> Path:
    """Refuse, before any request, to replace results in OUT this command did not write."""
    from chestxai.rundir.guard import check_overwrite
    from chestxai.serve.predict_files import skipped_path

    check_overwrite(out.predictions, force, what="predictions")
    check_overwrite(skipped_path(out.predictions), force, what="list of skipped files")
    dicom = out.dicom
    if dicom.is_dir() and any(dicom.glob("*.dcm")) and not force:
        raise FileExistsError(f"{dicom} already holds .dcm files; choose another --out or pass --force")
    return check_overwrite(out.ledger, force, what="DICOMweb ledger")


def _predict(
    args: argparse.Namespace, out: DicomwebDir, paths: list[str], forced: bool, progress: bool
) -> dict:
    from chestxai.serve.models import load_served
    from chestxai.serve.predict_files import PredictOptions, predict_files

    scorer = load_served(args.run, device=args.device)
    options = PredictOptions(
        batch_size=args.batch_size,
        explain=args.explain,
        force=args.force,
        progress=progress,
        dicom_out=out.dicom,
        dicom_force_modality=forced,
        dicom_presentation_state=args.presentation_state,
    )
    return predict_files(scorer, [Path(p) for p in paths], out.predictions, options)


def _record_predictions(result: dict, by_name: dict, ledger: Any, url: str) -> None:
    from chestxai.dicomweb.roundtrip import DONE, SKIPPED

    refused = {Path(s["path"]).name: s["reason"] for s in result.get("skipped", [])}
    for name, ref in by_name.items():
        if name in refused:
            ledger.add("predict", "instance", ref.sop, SKIPPED, refused[name], source=ref.url(url))
        else:
            ledger.add("predict", "instance", ref.sop, DONE, source=ref.url(url))


def _by_path(result: dict, by_name: dict) -> dict:
    return {
        str(e["source"]): by_name[Path(e["source"]).name]
        for e in result.get("dicom", [])
        if Path(e["source"]).name in by_name
    }


def _rename_paths(result: dict, by_name: dict, url: str) -> None:
    """The CSVs name each image by its WADO-RS URL: the temporary copy they were read from is gone."""
    import pandas as pd

    from chestxai.atomic import atomic_path

    for key in ("out", "skipped_csv"):
        path = Path(result[key])
        frame = pd.read_csv(path, dtype={"path": str})
        frame["path"] = [
            by_name[Path(p).name].url(url) if Path(p).name in by_name else p for p in frame["path"]
        ]
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)

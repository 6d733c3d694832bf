"""``predict --dicom-out DIR``: the DICOM sources of a batch screened before decoding, and their SR +
Parametric Map written after the explanation (:mod:`chestxai.dicomout` does the writing).

A DICOM source that cannot get DICOM results (no pixel data, not CR/DX unless forced, multi-frame,
no study/series/instance UIDs, a transfer syntax that cannot be decoded: :func:`check_source`) is
skipped *whole*: listed in ``OUT.skipped.csv`` with the reason, no CSV row, nothing written.
Non-DICOM inputs are predicted as usual and get no DICOM objects (they have no study to go in).
A write that fails after the prediction keeps the CSV row (its ``dicom_*`` columns empty) and lists
the failure in the skipped list; it never stops the batch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: the explanation ``--dicom-out`` asks for when ``--explain`` names none
DEFAULT_METHOD = "gradcam"
#: the CSV columns ``--dicom-out`` adds (the files written for the row; empty for a non-DICOM input)
COLUMNS = ["dicom_sr", "dicom_pm", "dicom_pr"]


def check_dicom_out(out_dir: Path, force: bool, onnx: bool) -> None:
    if onnx:
        raise ValueError(
            "--dicom-out writes the heatmap as a Parametric Map, which needs gradients an ONNX model "
            "does not have; pass the run directory instead of --onnx"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--dicom-out {out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.glob("*.dcm")) and not force:
        raise FileExistsError(
            f"--dicom-out {out_dir} already holds .dcm files; choose another folder or pass --force"
        )


def is_dicom(path: str | Path) -> bool:
    from chestxai.data.decode import sniff_format

    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False  # the decoder lists it with its reason
    return sniff_format(head, Path(path)) == "dicom"


def screen(paths: list[Path], force_modality: bool) -> tuple[dict[int, Any], dict[int, str]]:
    """``({position: data set}, {position: skip reason})`` for the DICOM files among ``paths``; a
    file that does not even parse is left to the decoder (it lists its own reason)."""
    from chestxai.data.decode_settings import DecodeError, DecodeSettings
    from chestxai.data.dicom_read import read_dicom
    from chestxai.dicomout import check_source

    sources: dict[int, Any] = {}
    refused: dict[int, str] = {}
    for k, p in enumerate(paths):
        if not is_dicom(p):
            continue
        try:
            ds = read_dicom(Path(p), DecodeSettings())
        except (DecodeError, OSError):
            continue
        reason = check_source(ds, force_modality)
        if reason:
            refused[k] = reason
        else:
            sources[k] = ds
    return sources, refused


def make_findings(
    scorer: Any,
    probabilities: Any,
    decisions: Any,
    explained_label: str,
    heatmap: np.ndarray,
    boxes: Any,
    method: str,
) -> Any:
    """One image's :class:`~chestxai.dicomout.DicomFindings` from a served model's outputs (the run's
    label order and operating thresholds; the run directory's name is the run id)."""
    from chestxai import __version__
    from chestxai.dicomout import AlgorithmIdentification, DicomFindings

    names = list(scorer.label_names)
    return DicomFindings(
        labels=tuple(names),
        probabilities=tuple(float(v) for v in probabilities),
        thresholds=tuple(float(scorer.thresholds.values[n]) for n in names),
        decisions=tuple(bool(v) for v in decisions),
        heatmap=np.asarray(heatmap, np.float32),
        explained_label=explained_label,
        boxes=tuple(tuple(int(v) for v in b) for b in boxes),
        algorithm=AlgorithmIdentification(
            version=__version__, run_id=str(scorer.name), epoch=scorer.epoch, method=str(method)
        ),
    )


def write_rows(scorer: Any, rows: list[dict], sources: dict[str, Any], options: Any) -> list[dict]:
    """Write the objects of every row whose path is a screened DICOM source, from what
    ``predict_files`` explained for it (``row["_dicom"]``: heatmap, boxes in the original's pixels,
    probabilities, decisions, file stem); fills the row's :data:`COLUMNS` and returns the skipped
    entries of the writes that failed."""
    from chestxai.dicomout import write_results

    failed: list[dict] = []
    for row in rows:
        row.update(dict.fromkeys(COLUMNS, ""))
        ds, done = sources.get(row["path"]), row.pop("_dicom", None)
        if ds is None or done is None:
            continue
        findings = make_findings(
            scorer,
            done["probabilities"],
            done["decisions"],
            row["explained_label"],
            done["heatmap"],
            done["boxes"],
            str(options.explain),
        )
        try:
            written = write_results(
                ds,
                findings,
                Path(options.dicom_out),
                stem=done["stem"],
                presentation_state=options.dicom_presentation_state,
                force_modality=options.dicom_force_modality,
                source_path=Path(row["path"]),
            )
        except Exception as exc:  # one image's objects never stop a batch; a bug's traceback is logged
            expected = isinstance(exc, ValueError | OSError)
            log.warning("%s: DICOM output failed: %s", row["path"], exc, exc_info=not expected)
            reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            failed.append(
                {"index": row["index"], "path": row["path"], "reason": f"DICOM output failed: {reason}"}
            )
            continue
        row["dicom_sr"], row["dicom_pm"] = str(written.sr), str(written.pmap)
        row["dicom_pr"] = "" if written.pr is None else str(written.pr)
    return failed


def listing(frame: Any) -> list[dict]:
    """The ``predict_files`` result's ``"dicom"`` list from the output frame's :data:`COLUMNS`."""
    if "dicom_sr" not in frame.columns:
        return []
    done = frame[frame["dicom_sr"].fillna("").astype(str) != ""]
    return [
        {
            "source": str(r["path"]),
            "sr": str(r["dicom_sr"]),
            "pmap": str(r["dicom_pm"]),
            "pr": str(r["dicom_pr"]) if isinstance(r["dicom_pr"], str) and r["dicom_pr"] else None,
        }
        for _, r in done.iterrows()
    ]

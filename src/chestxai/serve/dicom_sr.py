"""``POST /v1/predict?format=dicom-sr``: a DICOM upload answered with its TID 1500 SR
(``application/dicom``), the same SR ``predict --dicom-out`` writes (without the Parametric Map,
which the SR then does not list as evidence).

Refusals, before any model work: a non-DICOM upload (415), a DICOM that cannot get results
(:func:`chestxai.dicomout.check_source`: no pixel data, not CR/DX, multi-frame, missing UIDs, an
undecodable transfer syntax; 422). The heatmap is the ``explain`` method's (default gradcam) of the
``label`` (default the top positive finding), its boxes in the source's pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chestxai.serve.limits import RequestError, decode_refusals

#: the ``format`` query values
FORMATS = ("json", "dicom-sr")
MEDIA_TYPE = "application/dicom"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise RequestError(422, f"format={fmt!r}: choose one of {', '.join(FORMATS)}")


def _source(path: Path, limits: Any) -> Any:
    from chestxai.data.dicom_read import read_dicom
    from chestxai.dicomout import check_source

    with decode_refusals("read the DICOM"):
        ds = read_dicom(path, limits.decode)
    reason = check_source(ds)
    if reason:
        raise RequestError(422, f"format=dicom-sr: {reason}")
    return ds


def _pixels(path: Path, limits: Any, size: int) -> tuple[np.ndarray, tuple]:
    from chestxai.serve.inputs import decode_file, to_cache_pixels

    with decode_refusals("decode the image"):
        unit = decode_file(path, limits.decode)
    return to_cache_pixels(unit, size), unit.shape[:2]


def _heat(served: Any, pixels: np.ndarray, index: int, method: str, should_stop=None) -> np.ndarray:
    from chestxai.explain import UnsupportedMethodError
    from chestxai.uncertainty.cancel import check_stop

    check_stop(should_stop)
    try:
        return served.explain(pixels[None], [index], method)[0]
    except UnsupportedMethodError as exc:
        raise RequestError(422, f"explain={method!r}: {exc}") from None


async def answer_dicom_sr(
    served: Any, batcher: Any, heavy: Any, gate: Any, limits: Any, upload: Any, kind: str,
    explain: str | None, label: str | None,
) -> Any:  # fmt: skip
    from fastapi.responses import Response

    from chestxai.dicomout import build_objects, to_bytes
    from chestxai.explain.choice import choose_target
    from chestxai.explain.spaces import ORIGINAL, boxes_in_space
    from chestxai.serve.dicom_results import DEFAULT_METHOD, make_findings

    if kind != "dicom":
        raise RequestError(
            415,
            f"{upload.filename or 'the upload'} is {kind.upper()}, not DICOM: format=dicom-sr answers a DICOM "
            "upload with a DICOM SR placed in its study; send the .dcm, or leave format out for JSON",
        )
    method = explain or DEFAULT_METHOD
    source = await gate.run(_source, upload.path, limits)
    pixels, shape = await gate.run(_pixels, upload.path, limits, served.resize_to)
    probs = np.asarray(await batcher.submit(pixels), dtype=np.float64)
    decisions = served.decisions(probs[None])[0]
    target = choose_target(served.label_names, probs, decisions, label)
    heat = await heavy.run(_heat, served, pixels, target.index, method)
    boxes = [b.as_tuple() for b in boxes_in_space(heat, shape, ORIGINAL)[0]]
    findings = make_findings(served, probs, decisions, target.name, heat, boxes, method)
    sr = build_objects(source, findings, with_map=False)["sr"]
    name = f"{source.SOPInstanceUID}.sr.dcm"
    return Response(
        to_bytes(sr), media_type=MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )

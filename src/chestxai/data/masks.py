"""Decode the masks side table of an :class:`~chestxai.data.table.ImageTable` into arrays.

Two kinds exist (see ``table.py``): ``rle`` (the SIIM-ACR pneumothorax run-length strings) and
``png`` (a mask image on disk, e.g. lung masks of the COVID-19 collection). Every function here
returns ``uint8`` arrays holding 0 and 1, the convention of the prepared cache.

The SIIM encoding, stated once because it is easy to get wrong:

* the image is flattened **column by column** (Fortran / transposed order: the flat index of
  pixel ``(row, col)`` is ``col * height + row``);
* the string is ``gap length gap length ...`` where each *gap* is counted from the end of the
  previous run (the first from pixel 0): a **relative** encoding, not absolute start offsets;
* ``-1`` (with or without surrounding spaces) means "no pneumothorax": an empty mask.

How the orientation was checked (``tests/data/test_masks_realdata.py`` repeats it on a subset):
the 3,576 positive rows of the real SIIM table, decoded column-major and summed, draw the two
lung fields upright, brightest at the apices (74% of mask pixels in the upper half; centre of
mass at 34% of the height, 46% of the width) with a dark vertical band at the midline
(mediastinum): where pneumothorax air collects in an upright chest film. Decoded row-major
(i.e. transposed) the same sum shows the lungs lying on their side (centre of mass at 34% of the
width), which is anatomically impossible; flipped upside down the apices would sit at the bottom.
This matches the competition's own ``mask_functions.py``, whose ``rle2mask`` fills a
``(width, height)`` buffer that its users transpose (``.T``) before overlaying it on the image,
and whose encoder walks ``x`` in the outer loop. No vertical flip is involved: apices are at
row 0, the top of the DICOM pixel array.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

NO_MASK = "-1"


def _parse_rle(rle: str) -> np.ndarray:
    text = str(rle).strip()
    if text in ("", NO_MASK):
        return np.zeros(0, dtype=np.int64)
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError as exc:
        raise ValueError(
            f"not a run-length string (expected integers 'gap length ...'): {text[:60]!r}"
        ) from exc
    if len(values) % 2:
        raise ValueError(f"run-length string has an odd number of values ({len(values)}): {text[:60]!r}...")
    return values


def rle_decode(rle: str, height: int = 1024, width: int = 1024) -> np.ndarray:
    """SIIM relative, column-major run-length string -> ``uint8`` mask ``(height, width)`` of 0/1.

    ``"-1"`` or an empty string gives an all-zero mask. A string running past the image raises
    ``ValueError`` (usually a wrong ``height``/``width``: SIIM masks are 1024 x 1024).
    """
    height, width = int(height), int(width)
    values = _parse_rle(rle)
    flat = np.zeros(height * width + 1, dtype=np.int32)
    if len(values):
        gaps, lengths = values[0::2], values[1::2]
        if (gaps < 0).any() or (lengths < 0).any():
            raise ValueError("run-length string holds negative numbers; is it the relative SIIM encoding?")
        starts = np.cumsum(gaps) + np.cumsum(lengths) - lengths
        ends = starts + lengths
        if ends[-1] > height * width:
            raise ValueError(
                f"run-length string ends at pixel {ends[-1]} but a {height}x{width} mask has "
                f"{height * width} pixels; check height/width (SIIM masks are 1024x1024)"
            )
        # +1 at each run start, -1 after its end; the running sum is 1 inside runs (runs never overlap)
        np.add.at(flat, starts, 1)
        np.add.at(flat, ends, -1)
        flat = np.cumsum(flat)
    mask = (flat[:-1] > 0).astype(np.uint8)
    return mask.reshape((height, width), order="F")


def rle_encode(mask: np.ndarray) -> str:
    """Inverse of :func:`rle_decode` (``"-1"`` for an empty mask); used by tests and exports."""
    flat = np.asarray(mask).astype(bool).reshape(-1, order="F")
    if not flat.any():
        return NO_MASK
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    prev_end = np.concatenate([[0], ends[:-1]])
    gaps = starts - prev_end
    return " ".join(str(int(v)) for pair in zip(gaps, lengths, strict=True) for v in pair)


def _png_mask(ref: str, root: Path | None) -> np.ndarray:
    from PIL import Image  # lazy: only png masks need Pillow

    path = Path(ref)
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    if not path.exists():
        raise FileNotFoundError(f"mask image {path} not found (masks table ref {ref!r}); is --root right?")
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"))
    # masks are stored as 0/255 (or 0/1); anything above half of the maximum counts as inside
    top = int(arr.max()) if arr.size else 0
    return (arr > top / 2).astype(np.uint8) if top else np.zeros(arr.shape, np.uint8)


def _one(row: pd.Series | dict, root: Path | None) -> np.ndarray:
    kind = str(row["kind"])
    if kind == "rle":
        h, w = row.get("height"), row.get("width")
        if h is None or w is None or pd.isna(h) or pd.isna(w):
            raise ValueError(
                f"rle mask of image {row.get('image_id')!r} has no height/width in the masks table"
            )
        return rle_decode(str(row["ref"]), int(h), int(w))
    if kind == "png":
        return _png_mask(str(row["ref"]), root)
    raise ValueError(
        f"masks table row of image {row.get('image_id')!r} has kind {kind!r}; expected 'rle' or 'png'"
    )


def load_mask(row: pd.Series | dict | pd.DataFrame, root: str | Path | None = None) -> np.ndarray:
    """One masks-table row -> ``uint8`` 0/1 array at the mask's native size.

    Given several rows (a DataFrame, e.g. all SIIM RLE rows of one image), returns their union:
    SIIM lists each pneumothorax region of an image on its own row.
    """
    root = Path(root) if root is not None else None
    if isinstance(row, pd.DataFrame):
        return union_masks((r for _, r in row.iterrows()), root)
    return _one(row, root)


def union_masks(rows: Iterable[pd.Series | dict], root: str | Path | None = None) -> np.ndarray:
    """Pixel-wise OR of several mask rows (all must decode to the same shape)."""
    root = Path(root) if root is not None else None
    out: np.ndarray | None = None
    for row in rows:
        m = _one(row, root)
        if out is None:
            out = m.copy()
        elif m.shape != out.shape:
            raise ValueError(
                f"cannot merge masks of image {row.get('image_id')!r}: shapes {out.shape} and {m.shape} differ"
            )
        else:
            out |= m
    if out is None:
        raise ValueError("no mask rows given")
    return out


def masks_for_image(masks: pd.DataFrame, image_id: str, root: str | Path | None = None) -> np.ndarray | None:
    """Union of all mask rows of ``image_id`` in a masks table, or ``None`` when it has none."""
    rows = masks[masks["image_id"] == image_id]
    if rows.empty:
        return None
    return load_mask(rows, root)

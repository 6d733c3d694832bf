"""COCO run-length encoding of binary masks (the RLE of CheXlocalize's JSON files), via pycocotools.

Kept apart from the CheXlocalize files because it is a format of its own (COCO's ``maskApi``):
masks are flattened **column by column** (Fortran order) before encoding; row order gives the
transposed mask, the usual mistake. :func:`rle_runs` reads the compressed string to check it,
since pycocotools' decoder trusts the runs to fill ``h * w`` pixels exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def encode_mask(mask: np.ndarray) -> dict:
    """A 2-D mask -> ``{"size": [h, w], "counts": str}``, the COCO RLE their JSON files hold."""
    from pycocotools import mask as coco

    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a mask is 2-D (h, w); got shape {arr.shape}")
    rle = coco.encode(np.asfortranarray(arr.astype(bool).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: Mapping) -> np.ndarray:
    """``{"size": [h, w], "counts": str}`` -> bool mask ``(h, w)``."""
    from pycocotools import mask as coco

    counts = rle["counts"]
    obj = {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }
    return coco.decode(obj).astype(bool)


def rle_runs(counts: str) -> list[int]:
    """The run lengths (zeros first, alternating) a COCO compressed ``counts`` string holds.

    The format (COCO's ``rleToString``): each run is a little-endian base-32 number written 5
    bits per character (``chr(48 + bits)``, bit 0x20 = another character follows, bit 0x10 of
    the last = negative), and from the third run on it is stored as the difference to the run
    two before. Parsed here to check a file before pycocotools decodes it: its decoder trusts
    the runs to fill exactly ``h * w`` pixels.
    """
    runs: list[int] = []
    pos, n = 0, len(counts)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("the string ends inside a number")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[pos]!r} at {pos} is not in COCO's alphabet")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs

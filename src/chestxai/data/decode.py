"""Decode one image file (PNG 8/16-bit, JPEG, other Pillow formats, DICOM) to a grayscale array.

Contract: :func:`decode_image` returns a 2-D ``float32`` array in ``[0, 1]`` where 0 is black and
1 is white *as a radiologist would see it* (MONOCHROME1 DICOMs are inverted). One float contract
for every format keeps resizing exact and lets 16-bit and windowed DICOM data keep their precision
until the very last step (the uint8 cache).

Intensity scaling, stated once:

* 8-bit data (PNG/JPEG ``L``/``RGB``/..., 8-bit DICOM without rescale): ``value / 255``, so an
  8-bit image round-trips exactly into the uint8 cache.
* Colour (``RGB``, ``P``, ``CMYK``, ...): ITU-R 601-2 luma (Pillow's ``convert("L")`` weights).
* Alpha (``RGBA``, ``LA``, ``P`` with transparency): composited **on black** (colour x alpha).
  Transparent parts of figures become air-black, the X-ray background.
* 16-bit / 32-bit data without a display window (16-bit PNG/TIFF, DICOM with more than 8 stored
  bits or a rescale but no window): per-image min-max. Such files often use only 10-14 of 16 bits,
  so dividing by 65535 would leave them nearly black; min-max is the viewer's auto-window.
* DICOM: Modality LUT / RescaleSlope+Intercept, then the VOI LUT or window (``WindowCenter`` /
  ``WindowWidth``) when present, scaled by that window's output range (asked from pydicom by
  windowing the extremes, so LUT direction and SIGMOID are honoured), then MONOCHROME1 inversion.
* Multi-frame files: the first frame. JPEG EXIF orientation is applied (as viewers display it).

The format is detected from the file's magic bytes (a DICOM named ``.png`` still decodes; a text
file named ``.png`` is a :class:`DecodeError`). Image size is checked against ``max_pixels`` and the
bytes its decoded samples need against ``max_bytes`` (:mod:`.decode_settings`) *before* pixel data
is decoded (:class:`ImageTooLargeError`), for Pillow and DICOM alike (DICOM: :mod:`.dicom_read`,
which also inflates deflated data sets with a cap). Conversions happen in uint8 (Pillow) or in
strips of rows, so the returned float32 image is the only full-size float allocation. Pillow's
own global ``MAX_IMAGE_PIXELS`` is left untouched. Because Pillow refuses images above twice that
global whatever we allow (its hard decompression-bomb error), ``max_pixels`` may not exceed it:
a larger value is refused when the settings are made, not promised and then broken per image.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.data.decode_settings import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    MIB,
    DecodeError,
    DecodeSettings,
    ImageTooLargeError,
    pillow_hard_limit,
)
from chestxai.data.dicom_read import decode_dicom, minmax_into, strips

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MIB",
    "DecodeError",
    "DecodeSettings",
    "ImageTooLargeError",
    "decode_image",
    "pillow_hard_limit",
    "sniff_format",
]

log = logging.getLogger(__name__)

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_DICOM_EXTS = {".dcm", ".dicom", ".dic"}


def sniff_format(head: bytes, path: Path) -> str:
    """``"dicom"``, ``"png"``, ``"jpeg"``, ``"empty"`` or ``"other"`` (left to Pillow) from magic bytes.

    DICOM Part 10 files carry ``DICM`` at offset 128; a file with a DICOM extension but no preamble
    is tried as a raw DICOM data set.
    """
    if not head:
        return "empty"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_JPEG):
        return "jpeg"
    if path.suffix.lower() in _DICOM_EXTS:
        return "dicom"
    return "other"


def decode_image(path: str | Path, settings: DecodeSettings | None = None) -> np.ndarray:
    """Decode ``path`` to a 2-D float32 grayscale array in ``[0, 1]`` (see module docstring).

    Raises :class:`DecodeError` (corrupt, truncated, empty, not an image, DICOM without pixel data)
    or :class:`ImageTooLargeError`; ``FileNotFoundError`` when the file does not exist.
    """
    settings = settings or DecodeSettings()
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    kind = sniff_format(head, path)
    if kind == "empty":
        raise DecodeError(path, "empty file (0 bytes); re-download or remove it")
    if kind == "dicom":
        return decode_dicom(path, settings)
    return _decode_pillow(path, settings)


# --- Pillow ------------------------------------------------------------------------------------
#: bytes per pixel Pillow holds once a mode is loaded (P with transparency is converted to RGBA: 4)
_MODE_BYTES = {"1": 1, "L": 1, "P": 4, "LA": 4, "PA": 4, "La": 4, "I;16": 2, "I;16L": 2, "I;16B": 2}


def _mode_bytes(im: Any) -> int:
    """Bytes per pixel of the decoded samples (conservative: 4 per band for unknown modes)."""
    if im.mode in _MODE_BYTES:
        return _MODE_BYTES[im.mode]
    bands = len(im.getbands())
    return bands * (4 if im.mode in ("I", "F") or im.mode.startswith(("I;32", "F;")) else 1)


def _decode_pillow(path: Path, settings: DecodeSettings) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # our own limit below replaces Pillow's warning; its hard error is still caught
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as exc:
        # above Pillow's hard limit, which max_pixels never exceeds (see DecodeSettings): the same guard
        raise ImageTooLargeError(
            path, f"exceeds max_pixels={settings.max_pixels} (decompression-bomb guard; Pillow: {exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError(
            path, "not an image Pillow or pydicom can read (unknown or corrupt header)"
        ) from exc
    with im:
        w, h = im.size
        if w * h > settings.max_pixels:
            raise ImageTooLargeError(
                path,
                f"{w}x{h} = {w * h} pixels exceeds max_pixels={settings.max_pixels} (decompression-bomb "
                "guard; raise --max-pixels if the image is genuine)",
            )
        per_pixel = _mode_bytes(im)
        settings.check_bytes(path, w * h * per_pixel, f"{w}x{h} {im.mode} ({per_pixel} bytes per pixel)")
        try:
            im.seek(0)
            im.load()  # decode now so truncation shows up here, not later
            if im.format == "JPEG":
                im = ImageOps.exif_transpose(im)
            return _pil_to_gray(im)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's truncated/corrupt errors
            raise DecodeError(path, f"corrupt or truncated image data ({exc})") from exc


def _pil_to_gray(im: Any) -> np.ndarray:
    """Pillow image of any mode -> float32 [0, 1] grayscale (alpha composited on black).

    Conversions stay in Pillow's uint8 (``convert("L")``) or run in strips of rows into one float32
    output: a 4-band image never becomes a full-size float32 x 4 array.
    """
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im if mode == "RGBA" else im.convert("RGBA")
        w, h = rgba.size
        out = np.empty((h, w), np.float32)
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        for s in strips(h, w):
            part = np.asarray(rgba.crop((0, s.start, w, s.stop)), dtype=np.float32) / 255.0
            out[s] = np.clip((part[..., :3] @ weights) * part[..., 3], 0.0, 1.0)
        return out
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        raw = np.asarray(im)
        return minmax_into(np.empty(raw.shape, np.float32), lambda s: raw[s].astype(np.float64))
    gray = im if mode == "L" else im.convert("L")
    out = np.asarray(gray, dtype=np.float32)
    out /= 255.0
    return out

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
file named ``.png`` is a :class:`DecodeError`). Image size is checked against ``max_pixels``
*before* pixel data is decoded (:class:`ImageTooLargeError`), for Pillow and DICOM alike; Pillow's
own global ``MAX_IMAGE_PIXELS`` is left untouched. Because Pillow refuses images above twice that
global whatever we allow (its hard decompression-bomb error), ``max_pixels`` may not exceed it:
a larger value is refused when the settings are made, not promised and then broken per image.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Default pixel limit: ~80 megapixels (a 9000 x 9000 image). Chest X-rays are 1-20 MP.
DEFAULT_MAX_PIXELS = 80_000_000

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_DICOM_EXTS = {".dcm", ".dicom", ".dic"}


class DecodeError(ValueError):
    """A file that cannot be decoded to an image; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ImageTooLargeError(DecodeError):
    """Image larger than the pixel limit (a decompression-bomb guard); raise ``max_pixels`` to allow it."""


@dataclass(frozen=True)
class DecodeSettings:
    """Knobs that change decoded pixels (they are part of the prepared cache's hash).

    ``max_pixels``: refuse images with more pixels than this (rows x columns x frames for DICOM).
    ``voi``: apply the DICOM VOI LUT / window when present (else min-max / bit range only).
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    voi: bool = True

    def __post_init__(self) -> None:
        mp = self.max_pixels
        if isinstance(mp, bool) or not isinstance(mp, numbers.Integral) or mp < 1:
            raise ValueError(f"max_pixels={self.max_pixels!r} (--max-pixels) must be a positive whole number")
        hard = pillow_hard_limit()
        if hard is not None and self.max_pixels > hard:
            raise ValueError(
                f"max_pixels={self.max_pixels} (--max-pixels) is above Pillow's own hard limit of {hard} "
                "pixels (2 x PIL.Image.MAX_IMAGE_PIXELS), which refuses larger images whatever max_pixels "
                f"says; use at most --max-pixels {hard}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pillow_hard_limit() -> int | None:
    """Pixels above which ``Image.open`` raises ``DecompressionBombError`` (None: no limit set)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


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
        return _decode_dicom(path, settings)
    return _decode_pillow(path, settings)


# --- Pillow ------------------------------------------------------------------------------------
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
        try:
            im.seek(0)
            im.load()  # decode now so truncation shows up here, not later
            if im.format == "JPEG":
                im = ImageOps.exif_transpose(im)
            return _pil_to_gray(im)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's truncated/corrupt errors
            raise DecodeError(path, f"corrupt or truncated image data ({exc})") from exc


def _pil_to_gray(im: Any) -> np.ndarray:
    """Pillow image of any mode -> float32 [0, 1] grayscale (alpha composited on black)."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(luma * rgba[..., 3], 0.0, 1.0).astype(np.float32)
    if mode in ("L", "1", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        gray = im if mode == "L" else im.convert("L")
        return np.asarray(gray, dtype=np.float32) / 255.0
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        return _minmax(np.asarray(im).astype(np.float64))
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _minmax(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if hi <= lo:
        return np.zeros(arr.shape, np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


# --- DICOM -------------------------------------------------------------------------------------
def _decode_dicom(path: Path, settings: DecodeSettings) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
        raise DecodeError(path, f"corrupt DICOM header ({exc})") from exc
    if len(ds) == 0 or ("Rows" not in ds and "PixelData" not in ds and "SOPClassUID" not in ds):
        raise DecodeError(path, "not an image: no DICM marker and no DICOM image elements (wrong extension?)")
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DecodeError(path, "DICOM without pixel data (a structured report or header-only file?)")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows * cols * frames > settings.max_pixels:
        raise ImageTooLargeError(
            path,
            f"DICOM {rows}x{cols}x{frames} frames exceeds max_pixels={settings.max_pixels} "
            "(decompression-bomb guard)",
        )
    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    if "TransferSyntaxUID" not in ds.file_meta:
        # raw data set without a file meta header: pydicom needs a transfer syntax to decode
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for broken/unsupported pixel data
        raise DecodeError(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from exc
    if frames > 1 or (arr.ndim == 3 and int(ds.get("SamplesPerPixel", 1)) == 1) or arr.ndim == 4:
        log.info("%s: %d frames, using the first", path, frames)
        arr = arr[0]
    try:
        return _dicom_to_unit(arr, ds, settings)
    except (ValueError, AttributeError, TypeError) as exc:
        raise DecodeError(path, f"invalid DICOM LUT/window attributes ({exc})") from exc


def _dicom_to_unit(arr: np.ndarray, ds: Any, settings: DecodeSettings) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if arr.ndim == 3:  # colour DICOM (pydicom returns RGB): luma, 8-bit assumed per sample
        bits = int(ds.get("BitsStored", 8) or 8)
        rgb = arr.astype(np.float32) / float(2**bits - 1)
        return np.clip(rgb @ np.array([0.299, 0.587, 0.114], np.float32), 0, 1).astype(np.float32)
    rescaled = "ModalityLUTSequence" in ds or (
        "RescaleSlope" in ds and (float(ds.RescaleSlope) != 1 or float(ds.get("RescaleIntercept", 0)) != 0)
    )
    data = apply_modality_lut(arr, ds) if rescaled else arr
    has_window = bool(ds.get("VOILUTSequence")) or ("WindowCenter" in ds and "WindowWidth" in ds)
    if settings.voi and has_window and photometric in ("MONOCHROME1", "MONOCHROME2"):
        # the window's output range: window the extremes of the input domain (monotonic mapping)
        if np.issubdtype(data.dtype, np.integer):
            info = np.iinfo(data.dtype)
            probe = np.array([info.min, info.max], dtype=data.dtype)
        else:
            probe = np.array([-1e12, 1e12], dtype=np.float64)
        lo, hi = (float(v) for v in apply_voi_lut(probe, ds))
        out = apply_voi_lut(data, ds).astype(np.float64)
        unit = np.clip((out - lo) / (hi - lo), 0, 1).astype(np.float32) if hi != lo else _minmax(out)
    elif (
        not rescaled
        and int(ds.get("BitsStored", 8) or 8) <= 8
        and np.issubdtype(data.dtype, np.unsignedinteger)
    ):
        unit = data.astype(np.float32) / float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
    else:
        unit = _minmax(data.astype(np.float64))
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return np.clip(unit, 0.0, 1.0).astype(np.float32)

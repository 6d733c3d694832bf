"""DICOM -> float32 [0, 1] for :mod:`.decode`, with the size budgets checked before pixel memory.

Why a reader of our own around pydicom: ``pydicom.dcmread`` inflates a Deflated Explicit VR
Little Endian data set *whole* before reading a single element (a 2 MB file became 4 GB of
memory), and ``ds.pixel_array`` allocates whatever Rows x Columns x frames the header claims. So:

1. the file meta is read first; a deflated data set is inflated by us with ``zlib`` and a cap
   (``decompressobj(-15).decompress(data, max_length)``): first a few MiB for the header, then at
   most the bytes the header's pixel description needs plus a small slack; more is refused;
2. the header (without pixels) is checked against ``max_pixels`` and ``max_bytes``
   (rows x columns x frames x samples x bytes per sample) before pixel data is read or decoded;
3. the LUT / window arithmetic runs in strips of rows into one float32 output, so the float image
   is the only full-size float allocation (pydicom's LUT functions return float64 copies).

The intensity contract is the one stated in :mod:`.decode`.
"""

from __future__ import annotations

import io
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.data.decode_settings import MIB, DecodeError, DecodeSettings, ImageTooLargeError

log = logging.getLogger(__name__)

_DEFLATED = "1.2.840.10008.1.2.1.99"
#: inflated bytes read for the header of a deflated data set (elements before the pixel data)
HEADER_CAP = 4 * MIB
#: inflated bytes allowed beyond the declared pixel data (elements after it, padding)
SLACK = 1 * MIB
#: pixels per strip of the float arithmetic (a few hundred KiB of temporaries per strip)
STRIP_PIXELS = 1 << 16


def decode_dicom(path: Path, settings: DecodeSettings) -> np.ndarray:
    ds = read_dicom(path, settings)
    if len(ds) == 0 or ("Rows" not in ds and "PixelData" not in ds and "SOPClassUID" not in ds):
        raise DecodeError(path, "not an image: no DICM marker and no DICOM image elements (wrong extension?)")
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DecodeError(path, "DICOM without pixel data (a structured report or header-only file?)")
    frames = _int(ds, "NumberOfFrames", 1)
    import pydicom

    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    if "TransferSyntaxUID" not in ds.file_meta:
        # raw data set without a file meta header: pydicom needs a transfer syntax to decode
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for broken/unsupported pixel data
        raise DecodeError(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from exc
    if frames > 1 or (arr.ndim == 3 and _int(ds, "SamplesPerPixel", 1) == 1) or arr.ndim == 4:
        log.info("%s: %d frames, using the first", path, frames)
        arr = arr[0]
    try:
        return dicom_to_unit(arr, ds, settings)
    except (ValueError, AttributeError, TypeError) as exc:
        raise DecodeError(path, f"invalid DICOM LUT/window attributes ({exc})") from exc


def read_dicom(path: Path, settings: DecodeSettings) -> Any:
    """The data set with its pixel data still encoded, after the header passed both budgets."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    errors = (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError)
    try:
        with open(path, "rb") as fp:
            preamble = pydicom.filereader.read_preamble(fp, True)
            meta = pydicom.filereader._read_file_meta_info(fp)
            if str(meta.get("TransferSyntaxUID", "")) == _DEFLATED:
                return _read_deflated(path, fp, preamble, meta, settings)
        header = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except DecodeError:
        raise
    except errors as exc:
        raise DecodeError(path, f"corrupt DICOM header ({exc})") from exc
    check_header(path, header, settings)
    try:
        return pydicom.dcmread(path, force=True)
    except errors as exc:
        raise DecodeError(path, f"corrupt DICOM header ({exc})") from exc


def pixel_bytes(ds: Any) -> int:
    """Bytes the decoded pixel data needs: rows x columns x frames x samples x bytes per sample."""
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    frames, samples = _int(ds, "NumberOfFrames", 1), _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated", 8)
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        bits = max(bits, 32)
    return rows * cols * frames * samples * max(1, (bits + 7) // 8)


def check_header(path: Path, ds: Any, settings: DecodeSettings) -> None:
    rows, cols, frames = _int(ds, "Rows", 0), _int(ds, "Columns", 0), _int(ds, "NumberOfFrames", 1)
    if rows * cols * frames > settings.max_pixels:
        raise ImageTooLargeError(
            path,
            f"DICOM {rows}x{cols}x{frames} frames exceeds max_pixels={settings.max_pixels} "
            "(decompression-bomb guard; raise --max-pixels if the image is genuine)",
        )
    samples = _int(ds, "SamplesPerPixel", 1)
    what = f"DICOM {rows}x{cols}x{frames} frames x {samples} samples x {_int(ds, 'BitsAllocated', 8)} bits"
    settings.check_bytes(path, pixel_bytes(ds), what)


def _int(ds: Any, key: str, default: int) -> int:
    try:
        value = int(ds.get(key, default) or default)
    except (TypeError, ValueError):
        return default
    return max(value, 0)


def _read_deflated(path: Path, fp: Any, preamble: Any, meta: Any, settings: DecodeSettings) -> Any:
    """Inflate the data set after the file meta with caps: header first, then the declared pixels."""
    import pydicom
    from pydicom.filereader import read_dataset

    zipped = fp.read()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        head = inflater.decompress(zipped, HEADER_CAP)
    except zlib.error as exc:
        raise DecodeError(path, f"corrupt deflated DICOM data ({exc})") from exc
    del zipped
    try:
        header = read_dataset(io.BytesIO(head), False, True, stop_when=_at_pixels)
    except (EOFError, ValueError, KeyError, TypeError) as exc:
        raise DecodeError(path, f"corrupt DICOM header in the deflated data ({exc})") from exc
    if "Rows" not in header and not inflater.eof:
        raise DecodeError(path, f"deflated DICOM whose header is longer than {HEADER_CAP // MIB} MiB")
    check_header(path, header, settings)
    cap = pixel_bytes(header) + SLACK  # what may still come after the header
    try:
        rest = inflater.decompress(inflater.unconsumed_tail, cap + 1) if not inflater.eof else b""
    except zlib.error as exc:
        raise DecodeError(path, f"corrupt deflated DICOM data ({exc})") from exc
    if len(rest) > cap:
        raise ImageTooLargeError(
            path,
            f"deflated DICOM data holds more than its header declares ({pixel_bytes(header)} bytes of "
            f"pixels + {SLACK // MIB} MiB for other elements): inflation stopped there (a decompression "
            "bomb?); the file cannot be decoded within the budget",
        )
    if not inflater.eof:
        raise DecodeError(path, "truncated deflated DICOM data (the compressed stream does not end)")
    data = head + rest
    del head, rest
    try:
        body = read_dataset(io.BytesIO(data), False, True)
    except (EOFError, ValueError, KeyError, TypeError) as exc:
        raise DecodeError(path, f"corrupt DICOM data set in the deflated data ({exc})") from exc
    del data
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian  # now inflated
    ds = pydicom.dataset.FileDataset(str(path), body, preamble, meta, False, True)
    ds.set_original_encoding(False, True, body._character_set)
    return ds


def _at_pixels(tag: Any, vr: Any, length: int) -> bool:
    return int(tag) >= 0x7FE00008  # (7FE0,0008) FloatPixelData and after


def dicom_to_unit(arr: np.ndarray, ds: Any, settings: DecodeSettings) -> np.ndarray:
    """Decoded pixels -> float32 [0, 1], computed in strips of rows (same values as whole-array)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    out = np.empty(arr.shape[:2], np.float32)
    if arr.ndim == 3:  # colour DICOM (pydicom returns RGB): luma, 8-bit assumed per sample
        bits = int(ds.get("BitsStored", 8) or 8)
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        for s in strips(*arr.shape[:2]):
            rgb = arr[s].astype(np.float32) / float(2**bits - 1)
            out[s] = np.clip(rgb @ weights, 0, 1)
        return out
    rescaled = "ModalityLUTSequence" in ds or (
        "RescaleSlope" in ds and (float(ds.RescaleSlope) != 1 or float(ds.get("RescaleIntercept", 0)) != 0)
    )

    def data(s: slice) -> np.ndarray:
        return apply_modality_lut(arr[s], ds) if rescaled else arr[s]

    dtype = data(slice(0, 1)).dtype
    has_window = bool(ds.get("VOILUTSequence")) or ("WindowCenter" in ds and "WindowWidth" in ds)
    if settings.voi and has_window and photometric in ("MONOCHROME1", "MONOCHROME2"):
        # the window's output range: window the extremes of the input domain (monotonic mapping)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            probe = np.array([info.min, info.max], dtype=dtype)
        else:
            probe = np.array([-1e12, 1e12], dtype=np.float64)
        lo, hi = (float(v) for v in apply_voi_lut(probe, ds))
        if hi != lo:
            for s in strips(*arr.shape[:2]):
                out[s] = np.clip((apply_voi_lut(data(s), ds).astype(np.float64) - lo) / (hi - lo), 0, 1)
        else:
            minmax_into(out, lambda s: apply_voi_lut(data(s), ds).astype(np.float64))
    elif not rescaled and int(ds.get("BitsStored", 8) or 8) <= 8 and np.issubdtype(dtype, np.unsignedinteger):
        scale = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
        for s in strips(*arr.shape[:2]):
            out[s] = arr[s].astype(np.float32) / scale
    else:
        minmax_into(out, lambda s: data(s).astype(np.float64))
    if photometric == "MONOCHROME1":
        np.subtract(1.0, out, out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def strips(rows: int, cols: int) -> list[slice]:
    """Row slices of about :data:`STRIP_PIXELS` pixels each, covering ``rows``."""
    step = max(1, STRIP_PIXELS // max(cols, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, max(rows, 1), step)]


def minmax_into(out: np.ndarray, part: Any) -> np.ndarray:
    """Per-image min-max of ``part(strip)`` (float64 values) written into float32 ``out`` by strips:
    the same numbers as ``((a - lo) / (hi - lo)).astype(float32)`` on the whole array."""
    rows = strips(*out.shape[:2])
    lo, hi = float("inf"), float("-inf")
    for s in rows:
        values = part(s)
        lo, hi = min(lo, float(np.min(values))), max(hi, float(np.max(values)))
    if hi <= lo:
        out[...] = 0.0
        return out
    for s in rows:
        out[s] = (part(s) - lo) / (hi - lo)
    return out

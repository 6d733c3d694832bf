"""The decoder's settings and errors, in a module of their own so that both the decoder
(:mod:`.decode`) and its DICOM reader (:mod:`.dicom_read`) use them without importing each other.

Two budgets guard against decompression bombs, both checked from the header, before any pixel
memory is allocated:

* ``max_pixels`` (``--max-pixels``): width x height (x frames) of the image, as before.
* ``max_bytes`` (``--max-decode-mb``): the bytes the *decoded samples* need, width x height x
  frames x bands x bytes per sample. A 308 KB PNG of 8900 x 8900 RGBA pixels is under 80
  megapixels but needs 317 MB of samples (and cost ~3 GB as float32 before this budget existed);
  pixels alone do not say what an image costs, bytes do. A deflated DICOM is inflated with this
  cap too, so a small file that inflates to gigabytes is refused after at most the budget.

``max_bytes`` refuses images but never changes the pixels of one it accepts, so at its default it
is left out of :meth:`DecodeSettings.as_dict` (the prepared cache's hash): caches made before the
budget existed keep their key. A non-default value is part of the hash, as ``max_pixels`` is.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Default pixel limit: ~80 megapixels (a 9000 x 9000 image). Chest X-rays are 1-20 MP.
DEFAULT_MAX_PIXELS = 80_000_000
MIB = 1024 * 1024
#: Default byte budget for decoded samples: 256 MiB (an 80 MP 16-bit or RGB image fits; an 80 MP
#: RGBA does not). A 20 MP 16-bit DICOM needs 40 MiB.
DEFAULT_MAX_BYTES = 256 * MIB


class DecodeError(ValueError):
    """A file that cannot be decoded to an image; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ImageTooLargeError(DecodeError):
    """Image over the pixel or byte budget (a decompression-bomb guard); the message names the flag."""


@dataclass(frozen=True)
class DecodeSettings:
    """Knobs that change decoded pixels (they are part of the prepared cache's hash).

    ``max_pixels``: refuse images with more pixels than this (rows x columns x frames for DICOM).
    ``max_bytes``: refuse images whose decoded samples need more bytes than this (see module doc).
    ``voi``: apply the DICOM VOI LUT / window when present (else min-max / bit range only).
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    voi: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        mp = self.max_pixels
        if isinstance(mp, bool) or not isinstance(mp, numbers.Integral) or mp < 1:
            raise ValueError(f"max_pixels={self.max_pixels!r} (--max-pixels) must be a positive whole number")
        mb = self.max_bytes
        if isinstance(mb, bool) or not isinstance(mb, numbers.Integral) or mb < 1:
            raise ValueError(f"max_bytes={self.max_bytes!r} (--max-decode-mb) must be a positive number")
        hard = pillow_hard_limit()
        if hard is not None and self.max_pixels > hard:
            raise ValueError(
                f"max_pixels={self.max_pixels} (--max-pixels) is above Pillow's own hard limit of {hard} "
                "pixels (2 x PIL.Image.MAX_IMAGE_PIXELS), which refuses larger images whatever max_pixels "
                f"says; use at most --max-pixels {hard}"
            )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.max_bytes == DEFAULT_MAX_BYTES:
            del out["max_bytes"]  # keeps the cache keys made before the byte budget existed
        return out

    def check_bytes(self, path: str | Path, needed: int, what: str) -> None:
        """Refuse (before allocating) an image whose decoded samples need more than ``max_bytes``."""
        if needed > self.max_bytes:
            raise ImageTooLargeError(
                path,
                f"{what} needs {needed / MIB:.0f} MiB of decoded samples, above max_bytes="
                f"{self.max_bytes} ({self.max_bytes / MIB:g} MiB; decompression-bomb guard; raise "
                "--max-decode-mb if the image is genuine)",
            )


def pillow_hard_limit() -> int | None:
    """Pixels above which ``Image.open`` raises ``DecompressionBombError`` (None: no limit set)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)

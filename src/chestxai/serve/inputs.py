"""Which files to predict on, and how one file becomes model input (the training decoder).

A file goes through exactly what ``prepare`` does to a training image: :func:`decode_image`
(PNG/JPEG/16-bit/DICOM -> float [0, 1]) then :func:`resize_unit` to the *cache* size the run was
trained on (Lanczos, uint8). Preprocessing from the checkpoint (resize to the model input size,
normalise) happens after that, in the model's own code. So a file predicted here and the same
file prepared and scored by ``evaluate`` get the same pixels, hence the same probabilities.

No torch here: the ONNX path imports this module too.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chestxai.data.decode import DecodeSettings, decode_image
from chestxai.data.file_kind import not_regular
from chestxai.data.readers._common import walk_files
from chestxai.data.resize import resize_unit

log = logging.getLogger(__name__)

#: CSV columns looked for (in order) when ``--csv-column`` is not given
PATH_COLUMNS = ("path", "image", "file", "filename", "Path", "Image Index")


@dataclass
class Loaded:
    """Images that decoded (uint8 ``N x S x S`` at the cache size) and those that did not."""

    paths: list[str]
    images: np.ndarray
    skipped: list[dict] = field(default_factory=list)  # {"position", "path", "reason"}
    positions: list[int] = field(default_factory=list)  # where each good image was in the input list


def list_inputs(
    images: Sequence[str | Path] | None = None,
    folder: str | Path | None = None,
    csv_file: str | Path | None = None,
    csv_column: str | None = None,
    skipped: list[dict] | None = None,
) -> list[Path]:
    """Exactly one of ``images`` (files), ``folder`` (every non-hidden file below it, sorted) or
    ``csv_file`` (a column of paths, relative to the CSV's folder). Missing *listed* files are
    kept: they are reported as skipped with a reason, like any other bad file.

    A folder is walked by the readers' walker (:func:`chestxai.data.readers._common.walk_files`,
    what ``prepare`` uses): symlinked subfolders are followed once, and whatever it does not
    return (unreadable folders, link loops, dangling links, FIFOs and devices) is appended to
    ``skipped`` as ``{"path", "reason"}``, so that every entry found is predicted or listed."""
    given = [x for x in (images, folder, csv_file) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of --images PATH..., --folder DIR or --csv FILE")
    if images:
        return [Path(p) for p in images]
    if folder:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"--folder {root} is not a folder")
        problems: list[dict] = []
        files = walk_files(root, extensions=None, skipped=problems)
        if not files:
            why = f" ({len(problems)} entries not read, e.g. {problems[0]['path']}: {problems[0]['reason']})"
            raise ValueError(
                f"--folder {root} holds no readable files{why if problems else ''}; "
                f"point it at a folder of PNG/JPEG/DICOM images"
            )
        if skipped is not None:
            skipped.extend(problems)
        return files
    return _csv_paths(Path(csv_file), csv_column)


def _csv_paths(path: Path, column: str | None) -> list[Path]:
    if not path.is_file():
        raise FileNotFoundError(f"--csv {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        col = column or next((c for c in PATH_COLUMNS if c in header), None)
        if col is None or col not in header:
            want = f"column {column!r}" if column else f"one of the columns {list(PATH_COLUMNS)}"
            raise ValueError(f"--csv {path} has columns {header} but no {want}; name it with --csv-column")
        rows = [r[col] for r in reader]
    empty = [i + 2 for i, r in enumerate(rows) if not (r or "").strip()]
    if empty:
        raise ValueError(f"--csv {path}: rows {empty[:10]} have an empty {col!r}; fill or remove them")
    if not rows:
        raise ValueError(f"--csv {path} lists no images (only a header?)")
    return [p if p.is_absolute() else path.parent / p for p in (Path(r.strip()) for r in rows)]


def decode_file(path: str | Path, settings: DecodeSettings | None = None) -> np.ndarray:
    """The shared decoder; ``settings.max_pixels`` is the decompression-bomb guard."""
    return decode_image(path, settings)


def to_cache_pixels(unit: np.ndarray, size: int) -> np.ndarray:
    """float [0, 1] -> uint8 ``size x size``: the resize ``prepare`` applies before caching."""
    return resize_unit(unit, int(size))


def skip_reason(exc: BaseException) -> str:
    """The one-line reason a file was skipped (DecodeError carries its own)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"


def load_files(paths: Sequence[str | Path], size: int, settings: DecodeSettings | None = None) -> Loaded:
    """Decode + resize ``paths``; each failure is skipped with its reason, never fatal. Paths that
    are not regular files (after following links) are skipped without being opened."""
    good: list[str] = []
    positions: list[int] = []
    arrays: list[np.ndarray] = []
    skipped: list[dict] = []
    for k, p in enumerate(paths):
        odd = not_regular(p)  # a FIFO would block forever, /dev/zero never ends: never opened
        if odd:
            log.debug("skipping %s: %s", p, odd)
            skipped.append({"position": k, "path": str(p), "reason": odd})
            continue
        try:
            arrays.append(to_cache_pixels(decode_file(p, settings), size))
            good.append(str(p))
            positions.append(k)
        except (OSError, ValueError) as exc:  # DecodeError is a ValueError; unreadable files OSError
            reason = skip_reason(exc)
            log.debug("skipping %s: %s", p, reason)
            skipped.append({"position": k, "path": str(p), "reason": reason})
    images = np.stack(arrays) if arrays else np.zeros((0, int(size), int(size)), np.uint8)
    return Loaded(good, images, skipped, positions)

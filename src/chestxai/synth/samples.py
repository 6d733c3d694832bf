"""The per-epoch sample grid: the same few validation images every epoch, both directions.

Each row is one image pair: ``A | A->B | A->B->A | B | B->A | B->A->B`` (input, translated,
reconstructed), so a reader sees in one PNG whether translations change and cycles close as
training goes on. A header band names each column (:data:`COLUMNS`: real A, fake B, cycled A, ...;
the same names in the PNG's ``Columns`` text chunk), and tiles narrower than :data:`MIN_TILE` px
are enlarged (nearest neighbour, whole multiples) so the names fit. Written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chestxai.atomic import atomic_path
from chestxai.synth.checkpoint import to_model_input, to_uint8

GAP = 2  # pixels of white between tiles
#: what each column of a row shows: a real image, its translation, the translation translated back
COLUMNS = ("real A", "fake B", "cycled A", "real B", "fake A", "cycled B")
MIN_TILE = 64  # tiles are enlarged to at least this width so that the column names fit above them
HEADER = 14  # pixels of the header band with the column names


@torch.no_grad()
def triplets(
    g_ab: torch.nn.Module, g_ba: torch.nn.Module, images: np.ndarray, device: torch.device
) -> np.ndarray:
    """uint8 N x H x W -> uint8 N x 3 x H x W: input, translated by ``g_ab``, back through ``g_ba``."""
    x = to_model_input(np.asarray(images)).to(device)
    fake = g_ab(x)
    return np.stack([np.asarray(images, np.uint8), to_uint8(fake), to_uint8(g_ba(fake))], axis=1)


def grid(tiles: np.ndarray) -> np.ndarray:
    """uint8 R x C x H x W -> one uint8 image with ``GAP`` px white between tiles."""
    rows, cols, h, w = tiles.shape
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + GAP) : r * (h + GAP) + h, c * (w + GAP) : c * (w + GAP) + w] = tiles[r, c]
    return out


def write_sample_grid(
    path: Path,
    generators: dict[str, torch.nn.Module],
    images_a: np.ndarray,
    images_b: np.ndarray,
    device: torch.device,
) -> Path:

    n = min(len(images_a), len(images_b))
    a = triplets(generators["a2b"], generators["b2a"], images_a[:n], device)
    b = triplets(generators["b2a"], generators["a2b"], images_b[:n], device)
    tiles = np.concatenate([a, b], axis=1)
    scale = max(1, -(-MIN_TILE // tiles.shape[-1]))  # ceil
    tiles = tiles.repeat(scale, axis=2).repeat(scale, axis=3)
    with atomic_path(path) as tmp:
        labelled(grid(tiles), tiles.shape[-1]).save(tmp, format="PNG", pnginfo=_info())
    return path


def labelled(image: np.ndarray, tile: int):
    """The grid with a white header band naming each column (:data:`COLUMNS`), as a PIL image."""
    from PIL import Image, ImageDraw

    out = Image.new("L", (image.shape[1], image.shape[0] + HEADER), 255)
    out.paste(Image.fromarray(image), (0, HEADER))
    draw = ImageDraw.Draw(out)
    for c, name in enumerate(COLUMNS):
        draw.text((c * (tile + GAP) + 2, 1), name, fill=0)
    return out


def _info():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Columns", " | ".join(COLUMNS))
    info.add_text(
        "Rows", "row i: validation image i of A (columns 1-3) and of B (columns 4-6), the same every epoch"
    )
    return info

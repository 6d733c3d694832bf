"""Synthetic data for tests and sanity checks (like ``numpy.testing``): tiny caches, blob tasks.

Kept in the package rather than in ``tests/`` so every test module (and users checking an
installation) can import them by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chestxai.labels import NIH14  # noqa: F401  (re-exported for tests)
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_history, write_splits


def write_tiny_cache(
    path: Path,
    images: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    task: str,
    split: list[str] | None = None,
    patient_id: list[str] | None = None,
    source: str = "synthetic",
    boxes: pd.DataFrame | None = None,
    meta: dict[str, list] | None = None,
) -> Path:
    """Prepare a cache of in-memory images under ``path`` with the real ``prepare`` (an
    :class:`~chestxai.data.table.ImageTable` with ``arrays``), and return its directory.

    Image ids are ``img00000``, ``img00001``...; ``boxes`` (``image_id, label, x, y, w, h`` in
    pixels) become the cache's ``boxes.csv``; ``meta`` adds frame columns (``sex``, ``age``...). Going through the writer keeps every later stage's
    tests on the format ``prepare`` really writes.
    """
    from chestxai.data.prepare import prepare
    from chestxai.data.table import ImageTable

    images = np.asarray(images, np.uint8)
    n, size = len(images), int(images.shape[-1])
    ids = [f"img{i:05d}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "path": [""] * n,
            "patient_id": patient_id if patient_id is not None else ids,
            "view": ["PA"] * n,
            "split": split if split is not None else [""] * n,
            **(meta or {}),
        }
    )
    table = ImageTable(
        source=source,
        frame=frame,
        label_names=list(label_names),
        labels=np.asarray(labels, np.float32),
        task=task,
        arrays=images,
    )
    if boxes is not None and len(boxes):  # the table's convention: fractions of the image size
        table.boxes = pd.DataFrame(
            {
                "image_id": boxes["image_id"].astype(str),
                "label": boxes["label"].astype(str),
                **{c: boxes[c].astype(float) / size for c in "xywh"},
            }
        )
    return prepare(table, size=size, out=Path(path), workers=0, progress=False)


def blob_dataset(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images whose label is decided by a bright blob at a known place.

    Returns (uint8 images N x size x size, labels N x 1, blob boxes N x 4 as x, y, w, h in pixels;
    NaN for negatives). Positive images carry a bright square at a random position; negatives only
    noise. A model that learns the task must look at the blob - the basis of explanation tests.
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(80, 20, size=(n, size, size)).clip(0, 255)
    labels = (rng.random(n) < 0.5).astype(np.float32)
    boxes = np.full((n, 4), np.nan, np.float32)
    side = max(size // 5, 3)
    for i in np.flatnonzero(labels):
        x, y = rng.integers(1, size - side - 1, size=2)
        images[i, y : y + side, x : x + side] = 230
        boxes[i] = (x, y, side, side)
    return images.astype(np.uint8), labels[:, None], boxes


# --- tiny run directories (cache + untrained checkpoint + splits + history) ---------------------
SPLIT_CYCLE = ("train", "val", "test", "test")


def blob_cache(path: Path, counts: tuple[int, int, int], size: int = 32, seed: int = 0) -> Path:
    """A binary ``Blob`` cache at ``path`` of :func:`blob_dataset` images: the first ``counts[0]``
    rows train, the next ``counts[1]`` val, the last ``counts[2]`` test (what training tests need)."""
    n_train, n_val, n_test = counts
    images, labels, _ = blob_dataset(n_train + n_val + n_test, size=size, seed=seed)
    split = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return write_tiny_cache(path, images, labels, ["Blob"], "binary", split=split)


def deflated_dicom_bomb(
    path: str | Path, rows: int = 64, cols: int = 64, bits: int = 8, pixel_mib: float | None = None
) -> Path:
    """A Deflated Explicit VR Little Endian DICOM of zeros (zlib shrinks them ~1000:1).

    The header declares ``rows x cols`` at ``bits`` bits; the pixel data element holds
    ``pixel_mib`` MiB (default: exactly what the header declares). ``pixel_mib`` above the declared
    size makes a file whose data inflates past its header's promise. Written as a stream, so a
    multi-GiB bomb costs no memory to make (the issue's was 2 MB inflating to gigabytes).
    """
    import struct
    import zlib

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(rows), int(cols)
    ds.BitsAllocated = ds.BitsStored = int(bits)
    ds.HighBit = int(bits) - 1
    ds.PixelRepresentation = 0
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    n = rows * cols * ((bits + 7) // 8) if pixel_mib is None else int(pixel_mib * 1024 * 1024)
    n += n % 2
    element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB" if bits <= 8 else b"OW", 0, n)
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + head.getvalue())
        f.write(deflate.compress(buf.getvalue() + element))
        for _ in range(n >> 20):
            f.write(deflate.compress(chunk))
        f.write(deflate.compress(bytes(n & ((1 << 20) - 1))))
        f.write(deflate.flush())
    return Path(path)


def png_bomb_file(
    path: str | Path, width: int, height: int, mode: str = "RGBA", complete: bool = True
) -> Path:
    """A PNG of ``width x height`` black pixels in ``mode`` (``L``, ``RGB`` or ``RGBA``), written row
    by row, so an 8900 x 8900 RGBA (317 MB decoded) is a ~300 KB file made without allocating it.
    ``complete=False`` writes the header and one row only (enough for checks made from the header)."""
    import struct
    import zlib

    bands = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    colour = {"L": 0, "RGB": 2, "RGBA": 6}[mode]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate = zlib.compressobj(6)
    row = bytes(1 + width * bands)  # filter byte 0 + samples
    data = bytearray()
    for _ in range(height if complete else 1):
        data += deflate.compress(row)
    data += deflate.flush()
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
        )
        f.write(chunk(b"IDAT", bytes(data)) + chunk(b"IEND", b""))
    return Path(path)


def tiny_labels(task: str, n: int, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    if task == "binary":
        return (rng.random((n, 1)) < 0.4).astype(np.float32)
    if task == "multiclass":
        return np.eye(n_labels, dtype=np.float32)[
            (np.arange(n) // len(SPLIT_CYCLE)) % n_labels
        ]  # every class in every split
    y = (rng.random((n, n_labels)) < 0.3).astype(np.float32)
    y[rng.random((n, n_labels)) < 0.1] = np.nan  # unknown findings are masked per finding
    return y


def label_names_for(task: str, n_labels: int) -> list[str]:
    if task == "binary":
        return ["Pneumonia"]
    if task == "multilabel" and n_labels == len(NIH14):
        return list(NIH14)
    return [f"class{i}" for i in range(n_labels)]


def write_tiny_run(
    root: Path,
    task: str = "binary",
    n_labels: int = 1,
    n: int = 48,
    size: int = 32,
    seed: int = 0,
    patient_id: list[str] | None = None,
    label_names: list[str] | None = None,
    labels: np.ndarray | None = None,
    splits_csv: bool = True,
    history: bool = True,
    boxes: pd.DataFrame | None = None,
    meta: dict[str, list] | None = None,
) -> tuple[Path, Path]:
    """Returns ``(run_dir, cache_dir)`` under ``root``: a cache split train/val/test/test by row,
    an untrained resnet18 checkpoint (epoch 3) pointing at it, ``splits.csv`` and ``history.csv``,
    each written by the run directory's own writers. ``boxes`` (pixels) go into the cache."""
    rng = np.random.default_rng(seed)
    names = label_names or label_names_for(task, n_labels)
    y = tiny_labels(task, n, len(names), rng) if labels is None else labels
    images = rng.integers(0, 255, size=(n, size, size), dtype=np.uint8)
    # brighten positives of the first label so that even an untrained net scores a little signal
    images[np.nan_to_num(y[:, 0]) == 1] //= 2
    split = [SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i in range(n)]
    cache = write_tiny_cache(
        root / "cache", images, y, names, task, split=split, patient_id=patient_id, boxes=boxes, meta=meta
    )
    run = RunDir(root / "run")
    run.root.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's RNG state untouched
        torch.manual_seed(seed)
        model = create_model("resnet18", num_labels=len(names), task=task, input_size=size)
    preprocess = {"size": size, "mean": 0.5, "std": 0.25}
    ckpt = make_checkpoint(model, names, preprocess, config={"data": {"cache_dir": str(cache)}}, epoch=3)
    save_atomic(ckpt, run.checkpoint)
    if splits_csv:
        ids = [f"img{i:05d}" for i in range(n)]
        write_splits(run, pd.DataFrame({"image_id": ids, "row": range(n), "split": split}))
    if history:
        write_history(
            run,
            [
                {"epoch": e, "train_loss": tl, "val_loss": vl, "val_auc": va, "epoch_time_s": s,
                 "train_images_per_s": ips}
                for e, tl, vl, va, s, ips in (
                    (1, 0.7, 0.72, 0.6, 1.5, 100.0),
                    (2, 0.6, 0.65, 0.7, 1.4, 110.0),
                    (3, 0.5, 0.6, 0.75, 1.6, 105.0),
                )
            ],
        )  # fmt: skip
    return run.root, cache

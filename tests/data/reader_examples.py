"""One tiny synthetic dataset per registered reader, in that reader's own distributed layout.

The reader contract test (``test_reader_contract.py``) runs every reader in ``list_readers()`` on
its example here, so a new reader is under the contract the moment it is registered, and the
test fails, naming the reader, until it has an example. Add one with::

    @example("myreader")
    def _myreader(root: Path) -> Example:
        ...write the files under root...
        return Example(root, options={...}, rows=3)

Everything is written into ``tmp_path``; nothing here is real data. Image files are real but
tiny PNG/JPEG/DICOM files, so ``prepare`` could decode them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from synth_images import gradient, write_dicom


@dataclass
class Example:
    """What a builder wrote: where to point the reader, with which options, what to expect."""

    root: Path
    rows: int  # images the reader must list
    options: dict[str, Any] = field(default_factory=dict)
    boxes: bool = False  # the example carries boxes, so the side table must not be empty
    masks: bool = False


EXAMPLES: dict[str, Callable[[Path], Example]] = {}


def example(name: str) -> Callable[[Callable[[Path], Example]], Callable[[Path], Example]]:
    """Register the example dataset builder of reader ``name``."""

    def deco(fn: Callable[[Path], Example]) -> Callable[[Path], Example]:
        if name in EXAMPLES:
            raise ValueError(f"reader example {name!r} is defined twice")
        EXAMPLES[name] = fn
        return fn

    return deco


def build_example(name: str, root: Path) -> Example:
    """The example of reader ``name`` written under ``root``; a LookupError when there is none."""
    if name not in EXAMPLES:
        raise LookupError(
            f"reader {name!r} is registered but has no example dataset: add an @example({name!r}) "
            f"builder to tests/data/reader_examples.py so the reader contract test can run it"
        )
    root.mkdir(parents=True, exist_ok=True)
    return EXAMPLES[name](root)


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(gradient(16, 16).astype(int) + value, 0, 255).astype(np.uint8)).save(path)
    return path


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@example("folder")
def _folder(root: Path) -> Example:
    # Kermany layout: split/class/file, two patients with two NORMAL images each
    for split in ("train", "test"):
        for i in (1, 2):
            _png(root / split / "NORMAL" / f"IM-00{len(split)}1-000{i}.jpeg")
            _png(root / split / "PNEUMONIA" / f"person{len(split)}{i}_bacteria_{i}.jpeg", 40)
    return Example(root, rows=8)


@example("csv")
def _csv(root: Path) -> Example:
    for name in ("a", "b", "c"):
        _png(root / "imgs" / f"{name}.png")
    _text(
        root / "manifest.csv",
        "path,finding,pid,fold\nimgs/a.png,normal,p1,train\n./imgs/b.png,covid,p1,train\nimgs/c.png,nan,p2,test\n",
    )
    return Example(root, rows=3, options={"label_col": "finding", "patient_col": "pid", "split_col": "fold"})


@example("nih")
def _nih(root: Path) -> Example:
    _text(
        root / "Data_Entry_2017.csv",
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
        "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
        "00000001_001.png,Infiltration|Effusion,1,1,58,M,PA,2894,2729,0.143,0.143,\n"
        "00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.171,0.171,\n",
    )
    _text(
        root / "BBox_List_2017.csv",
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_001.png,Infiltrate,512,256,102.4,51.2,,,\n"
        "00000001_000.png,Cardiomegaly,300,400,400,300,,,\n",
    )
    _text(root / "test_list.txt", "00000002_000.png\n")
    _text(root / "train_val_list.txt", "00000001_000.png\n00000001_001.png\n")
    for name in ("00000001_000.png", "00000001_001.png"):
        _png(root / "images" / name)
    return Example(root, rows=3, boxes=True)


@example("chexpert")
def _chexpert(root: Path) -> Example:
    from chestxai.data.readers.chexpert import LABELS

    head = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(LABELS)

    def row(patient: int, view: str, values: list[str]) -> str:
        kind = "frontal" if view != "LAT" else "lateral"
        appa = "" if view == "LAT" else view
        path = f"CheXpert-v1.0-small/train/patient{patient:05d}/study1/view1_{kind}.jpg"
        return f"{path},Female,60,{kind.capitalize()},{appa}," + ",".join(values)

    blank = [""] * len(LABELS)
    _text(
        root / "train.csv",
        "\n".join(
            [
                head,
                row(1, "AP", ["1.0", *blank[1:]]),
                row(2, "PA", ["", "-1.0", "0.0", *blank[3:]]),
                row(2, "LAT", blank),
            ]
        )
        + "\n",
    )
    _text(root / "valid.csv", "\n".join([head, row(3, "PA", ["0.0"] * len(LABELS))]) + "\n")
    return Example(root, rows=3)  # frontal views only by default


@example("siim")
def _siim(root: Path) -> Example:
    from chestxai.data.masks import rle_encode

    mask = np.zeros((1024, 1024), np.uint8)
    mask[100:200, 300:350] = 1
    _text(root / "train-rle.csv", f"ImageId, EncodedPixels\nimg.1, {rle_encode(mask)}\nimg.2, -1\n")
    (root / "dicom-images-train" / "s1").mkdir(parents=True)
    write_dicom(root / "dicom-images-train" / "s1" / "img.1.dcm", gradient(), ViewPosition="PA")
    return Example(root, rows=2, masks=True)


@example("rsna")
def _rsna(root: Path) -> Example:
    _text(
        root / "stage_2_train_labels.csv",
        "patientId,x,y,width,height,Target\n"
        "p-1,264.0,152.0,213.0,379.0,1\np-1,562.0,152.0,256.0,453.0,1\np-2,,,,,0\n",
    )
    _text(root / "stage_2_detailed_class_info.csv", "patientId,class\np-1,Lung Opacity\np-2,Normal\n")
    return Example(root, rows=2, boxes=True)


@example("covid-collection")
def _covid(root: Path) -> Example:
    _text(
        root / "metadata.csv",
        "patientid,offset,sex,age,finding,view,modality,folder,filename,license\n"
        "1,0,M,65,COVID-19,PA,X-ray,images,a.png,cc\n"
        "1,3,M,65,SARS,AP Supine,X-ray,images,b.png,cc\n"
        "2,,F,50,COVID-19,L,X-ray,images,c.png,cc\n"
        "3,,F,40,todo,PA,X-ray,images,d.png,cc\n",
    )
    for name in ("a", "b", "d"):
        _png(root / "images" / f"{name}.png")
    _png(root / "lungVAE-masks" / "a_mask.png", 200)
    return Example(root, rows=3, masks=True)  # the lateral view is dropped


@example("medmnist")
def _medmnist(root: Path) -> Example:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    np.savez(root / "pneumoniamnist.npz", **arrays)
    return Example(root, rows=8, options={"download_missing": False})

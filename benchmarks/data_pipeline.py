"""Data pipeline speed: prepare throughput, cached epoch vs naive per-item decoding, NIH table parse.

Usage::

    .venv/bin/python benchmarks/data_pipeline.py [--data ../shared/data] [--size 224] [--epochs 3]

Prints these figures (record them in docs/BENCHMARKS.md, "Data pipeline"):

1. ``prepare`` throughput on the 596 NIH box images (512 px PNG -> ``size``), fresh cache.
2. One training epoch from the cache through the training loop's own path
   (``chestxai.train.batches``: ``epoch_order`` + ``iterate_batches`` + ``to_unit`` with keyed
   augmentation) versus a naive ``Dataset`` that opens, converts, resizes, augments (torchvision,
   same ranges) and ``ToTensor``s each file in ``__getitem__`` (what seed scripts do); the ratio
   is the point (target >= 20x). The same path wrapped in a ``DataLoader`` (``make_loader``, for
   users' own loops) is timed beside it.
3. The same epochs without augmentation on either side, and the loading cost as a share of one
   ResNet-18 training step on this machine.
4. Parse time of the full NIH label table (112,120 rows) through the ``nih`` reader.

Both loaders use the same batch size and ``num_workers`` (default 0) so the ratio compares the
work per image, not the parallelism.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from chestxai.data.prepare import prepare
from chestxai.data.readers import read_table
from chestxai.paths import shared_data_root
from chestxai.train.batches import make_loader


class NaiveDataset(Dataset):
    """The per-item baseline of seed scripts: decode + resize (+ torchvision augmentation) per access."""

    def __init__(self, paths: list[str], labels: np.ndarray, size: int, augment: bool = False):
        from torchvision import transforms as T

        steps = [T.Resize((size, size))]
        if augment:  # the same ranges as chestxai's AugmentConfig defaults
            steps += [T.RandomAffine(7, translate=(0.05, 0.05), scale=(0.95, 1.05)), T.ColorJitter(0.1, 0.1)]
        self.transform = T.Compose([*steps, T.ToTensor()])
        self.paths, self.labels = paths, np.array(labels)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = Image.open(self.paths[i]).convert("L")
        return self.transform(img), torch.from_numpy(self.labels[i])


def training_loop_epoch_rate(path: Path, batch_size: int, epochs: int, augment: bool = True) -> float:
    """Images/s of the training loop's own input path: order, memmap batch gather, keyed augmentation."""
    from chestxai.data.augment import AugmentConfig
    from chestxai.data.cache import PreparedCache
    from chestxai.data.dataset import to_unit
    from chestxai.train.batches import epoch_order, iterate_batches

    cache = PreparedCache(path)
    rows = np.arange(len(cache))
    config = AugmentConfig() if augment else None
    rates = []
    for epoch in range(epochs):
        start, n = time.perf_counter(), 0
        order = epoch_order(rows, epoch, 0)
        for batch in iterate_batches(
            cache.images, cache.labels, order, batch_size, augment=config, epoch=epoch
        ):
            n += len(to_unit(batch.images, batch.params))
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def epoch_rate(loader, epochs: int) -> float:
    """Median images/s over ``epochs`` full passes (each pass touches every image once)."""
    rates = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += len(batch[0])
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def train_step_seconds(batch_size: int, size: int, classes: int, steps: int = 2) -> float:
    """Median time of a ResNet-18 (1 channel) forward + backward + SGD step on random data."""
    import timm

    model = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.rand(batch_size, 1, size, size), torch.rand(batch_size, classes)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
        if i:  # the first step warms up allocators
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=shared_data_root(), help="the shared real-data folder")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=3, help="passes per loader (median reported)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers for both loaders")
    ap.add_argument("--workers", type=int, default=None, help="prepare workers (default min(cpus, 4))")
    args = ap.parse_args()
    nih = args.data / "nih-bbox"
    if not nih.is_dir():
        raise SystemExit(f"{nih} not found; pass --data pointing at the shared data folder")
    print(f"cpus available: {len(os.sched_getaffinity(0))}, torch threads: {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = prepare("nih", nih, size=args.size, out=tmp, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        table = read_table("nih", nih)
        n = len(table)
        print(
            f"prepare nih-bbox: {n} images 512 px -> {args.size} px in {seconds:.2f} s = {n / seconds:.0f} images/s"
        )

        kw = {"batch_size": args.batch_size, "num_workers": args.num_workers}
        paths = table.frame["path"].astype(str).tolist()
        naive_aug = DataLoader(
            NaiveDataset(paths, table.labels, args.size, augment=True),
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        naive_aug_rate = epoch_rate(naive_aug, args.epochs)
        loop_rate = training_loop_epoch_rate(path, args.batch_size, args.epochs)
        print(
            f"epoch naive (PIL open+convert+resize+RandomAffine+ColorJitter+ToTensor per item): {naive_aug_rate:.0f} images/s"
        )
        print(
            f"epoch of the training loop's path (memmap batches + keyed batched augmentation): {loop_rate:.0f} images/s "
            f"= {loop_rate / naive_aug_rate:.1f}x naive (like for like; target >= 20x)"
        )
        cached_rate = epoch_rate(make_loader(path, shuffle=True, augment=True, seed=0, **kw), args.epochs)
        print(
            f"the same path through make_loader (a DataLoader, workers {args.num_workers}): {cached_rate:.0f} images/s "
            f"= {cached_rate / naive_aug_rate:.1f}x naive"
        )
        naive = DataLoader(
            NaiveDataset(paths, table.labels, args.size),
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        naive_rate = epoch_rate(naive, args.epochs)
        plain_rate = training_loop_epoch_rate(path, args.batch_size, args.epochs, augment=False)
        print(
            f"without augmentation: naive {naive_rate:.0f} images/s, the loop's path {plain_rate:.0f} images/s "
            f"= {plain_rate / naive_rate:.1f}x"
        )
        step = train_step_seconds(args.batch_size, args.size, len(table.label_names))
        load = args.batch_size / loop_rate
        print(
            f"ResNet-18 forward+backward, batch {args.batch_size} at {args.size} px on this CPU: {step:.2f} s/step; "
            f"loading + augmenting that batch from the cache: {load * 1e3:.1f} ms = {100 * load / step:.1f}% of a step"
        )

    table_file = args.data / "tables" / "Data_Entry_2017.csv.zip"
    start = time.perf_counter()
    full = read_table("nih", table_file)
    print(
        f"parse full NIH table ({len(full)} rows, {full.frame['patient_id'].nunique()} patients) "
        f"via the nih reader: {time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()

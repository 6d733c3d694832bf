"""Tiny models for explanation tests: small enough to train on a shared 2-core CPU in seconds."""

from __future__ import annotations

import torch
from torch import nn

from chestxai.models.classifier import ChestClassifier
from chestxai.testing import blob_dataset, write_tiny_cache  # noqa: E402,F401  (re-exported)


class TinyBackbone(nn.Module):
    """A timm-shaped backbone (``forward_features`` / ``forward_head`` / ``num_features``) at stride 2.

    The registry's CNNs reduce a 32-64 px image to a 1x1 or 2x2 map (stride 32), too coarse for a
    heatmap maximum to land inside a 6 px blob, and too slow to train here; this one keeps a 16x16
    map at 32 px and global average pooling (so CAM applies too). Its receptive field (5 px) is
    smaller than the blob, so a unit responds most where it sees only blob: inside it.
    """

    num_features = 16

    def __init__(self, in_chans: int = 1, stride: int = 2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=stride, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.stage = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16), nn.ReLU())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def tiny_model(
    num_labels: int = 1, task: str = "binary", head: str = "pooled", size: int = 32, stride: int = 2
) -> ChestClassifier:
    config = {
        "name": "tiny",
        "num_labels": num_labels,
        "task": task,
        "head": head,
        "input_size": size,
        "in_chans": 1,
    }
    return ChestClassifier(TinyBackbone(stride=stride), "cnn", num_labels, task, head=head, config=config)


PREPROCESS = {"size": 32, "mean": 0.5, "std": 0.25}


def train_tiny(
    images, labels, steps: int = 150, seed: int = 0, head: str = "pooled", stride: int = 2
) -> ChestClassifier:
    """Train :func:`tiny_model` on a binary task with plain torch (Adam, BCE), seeded."""
    from chestxai.models.preprocess import to_input

    torch.manual_seed(seed)
    model = tiny_model(head=head, size=images.shape[-1], stride=stride)
    x_all = to_input(images, {**PREPROCESS, "size": images.shape[-1]})
    y_all = torch.as_tensor(labels, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (32,), generator=gen)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()

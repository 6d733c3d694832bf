"""KID's std is the spread over subsets smaller than the sets (issue 20 item 14).

With subsets as large as the sets (the old ``subset_size = min(1000, n_real, n_fake)``) every subset is
the whole set and the std was ~1e-7 by construction while the JSON called it a std.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from chestxai.synth.features import Extractor, fid_kid


class _MeanPool(nn.Module):
    """A tiny feature extractor: 4 x 4 average pooling of the first channel, 16 features."""

    num_features = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()[:, :1] / 255.0
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1).double()


def _images(seed: int, n: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(120 + shift, 40, size=(n, 16, 16)), 0, 255).astype(np.uint8)


def test_kid_subsets_are_half_the_smaller_set_and_the_std_is_their_spread():
    ex = Extractor(_MeanPool(), {"name": "test"})
    r = fid_kid(ex, _images(0, 40, 0), _images(1, 30, 20), kid_subsets=20)
    kid = r["kid"]
    assert kid["subset_size"] == 15  # half of the smaller set (30), so subsets differ
    assert kid["std"] is not None and kid["std"] > 1e-4 * abs(kid["mean"])
    assert "spread" in kid["std_is"] and "not a standard error" in kid["std_is"]


def test_kid_std_is_null_with_a_reason_when_every_subset_is_the_whole_set():
    ex = Extractor(_MeanPool(), {"name": "test"})
    kid = fid_kid(ex, _images(0, 3, 0), _images(1, 3, 20), kid_subsets=5)["kid"]
    assert kid["subset_size"] == 2 and kid["std"] is not None  # 2 of 3: subsets still differ
    kid = fid_kid(ex, _images(0, 2, 0), _images(1, 2, 20), kid_subsets=5)["kid"]
    assert kid["subset_size"] == 2 and kid["std"] is None and "whole set" in kid["std_null_reason"]

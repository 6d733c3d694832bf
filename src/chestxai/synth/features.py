"""FID and KID (torchmetrics) with a *named* feature extractor loaded from a local file.

Why not the usual Inception FID: torchmetrics' default extractor is torch-fidelity's port of the
TF Inception-v3, downloaded on first use; torch-fidelity is not installed here and nothing may be
downloaded. So the extractor is always explicit and recorded in ``synth_metrics.json``:

* ``classifier`` (default): the pooled (penultimate) features of a chestxai classifier run,
  opened from its ``checkpoint.pt`` (:class:`chestxai.models.trained_run.TrainedRun`) and fed exactly
  as the classifier was trained (:func:`chestxai.models.preprocess.to_input`). A chest-X-ray
  extractor sees what matters in X-rays, but the figure depends on that classifier: it is **not
  comparable with published (Inception) FIDs**, nor across extractors;
* ``inception-torchvision:FILE``: torchvision's Inception-v3 with ImageNet weights from a local
  state-dict file (e.g. ``inception_v3_google-0cc3c7bd.pth``), 2048-d pool features, the gray image
  repeated on three channels at 299 px. Closer to, but still not the same network as, the TF
  Inception of published FIDs (different weights port and resizing).

FID and KID both depend on the number of images (FID is biased upwards at small n, more so when
n is below the feature width); the count is fixed by the caller and recorded beside the figures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

INCEPTION_PREFIX = "inception-torchvision:"
KID_STD_IS = (
    "std over the subsets of the KID estimate on each subset (subset_size images per set, half the smaller "
    "set): their spread, not a standard error of the mean"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NOT_COMPARABLE = (
    "computed on this extractor's features: not comparable with published Inception FIDs/KIDs, "
    "nor with figures from another extractor or sample count"
)


class ClassifierFeatures(nn.Module):
    """uint8 ``N x 1 x H x W`` -> the classifier's pooled features ``N x C`` (what its head reads)."""

    def __init__(self, model: nn.Module, preprocess: dict):
        super().__init__()
        self.model = model.eval()
        self.preprocess = dict(preprocess)
        size = int(self.preprocess["size"])
        with torch.inference_mode():
            dummy = torch.zeros(1, 1, size, size, dtype=torch.uint8, device=self._device)
            self.num_features = int(self.forward(dummy).shape[-1])

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from chestxai.models.preprocess import to_input

        with torch.inference_mode():
            inp = to_input(x, self.preprocess).to(self._device)
            return self.model.pool(self.model.features(inp)).flatten(1).float()

    def train(self, mode: bool = True) -> ClassifierFeatures:  # never leaves eval mode (BatchNorm)
        return super().train(False)


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 (local weights) pool features, 2048-d, for uint8 gray images."""

    num_features = 2048

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu"):
        super().__init__()
        from torchvision.models import inception_v3

        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"--extractor {INCEPTION_PREFIX}{weights}: file not found; give a torchvision Inception-v3 "
                f"state dict (inception_v3_google-*.pth) on this machine"
            )
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(
                f"{path} is not a torchvision Inception-v3 state dict ({str(exc).splitlines()[0][:160]})"
            ) from None
        net.fc = nn.Identity()
        self.net = net.to(device).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        with torch.inference_mode():
            x = x.to(self.mean.device).float().div(255.0)
            if x.ndim == 3:
                x = x.unsqueeze(1)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
            x = (x.repeat(1, 3, 1, 1) - self.mean) / self.std
            return self.net(x).float()

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)


@dataclass
class Extractor:
    """A feature module plus what ``synth_metrics.json`` says about it."""

    module: nn.Module
    info: dict[str, Any]


def classifier_extractor(run: str | Path, device: str | torch.device = "cpu") -> Extractor:
    """The pooled features of the classifier run ``run`` (its local ``checkpoint.pt``)."""
    from chestxai.models.trained_run import TrainedRun
    from chestxai.rundir import RunDir

    path = RunDir(Path(run)).checkpoint
    if not path.is_file():
        raise FileNotFoundError(
            f"--classifier {run}: no checkpoint.pt there; give a classifier run trained with `chestxai train`"
        )
    trained = TrainedRun.open(RunDir(Path(run)), device, single=True)
    module = ClassifierFeatures(trained.model, trained.preprocess)
    name = trained.model_name
    return Extractor(
        module,
        {
            "name": "classifier",
            "description": f"pooled (penultimate) features of the classifier run {run} ({name}, "
            f"{module.num_features}-d, input {int(trained.preprocess['size'])} px)",
            "file": str(path),
            "num_features": module.num_features,
            "comparable_with_published": False,
            "note": NOT_COMPARABLE,
        },
    )


def inception_extractor(weights: str | Path, device: str | torch.device = "cpu") -> Extractor:
    module = InceptionFeatures(weights, device=device)
    return Extractor(
        module,
        {
            "name": "inception-torchvision",
            "description": "torchvision Inception-v3 (ImageNet weights from a local file), 2048-d pool features, "
            "gray repeated on 3 channels, 299 px",
            "file": str(Path(weights).expanduser()),
            "num_features": 2048,
            "comparable_with_published": False,
            "note": "torchvision's Inception weights and resizing, not the TF Inception of published FIDs: "
            "close to, but not comparable with, published figures",
        },
    )


def make_extractor(spec: str | None, classifier: str | Path | None, device: str | torch.device = "cpu"):
    """``--extractor`` text -> :class:`Extractor`, or ``(None, reason)`` when none can be built.

    ``None``/``classifier`` uses ``--classifier``'s run; ``inception-torchvision:FILE`` a local file.
    """
    if spec is None or spec == "classifier":
        if classifier is None:
            return None, (
                "no --classifier given: FID/KID need a feature extractor (--classifier RUN, or "
                f"--extractor {INCEPTION_PREFIX}FILE)"
            )
        return classifier_extractor(classifier, device), None
    if spec.startswith(INCEPTION_PREFIX):
        return inception_extractor(spec[len(INCEPTION_PREFIX) :], device), None
    raise ValueError(
        f"--extractor {spec!r}: unknown; use 'classifier' (the --classifier run's pooled features) or "
        f"'{INCEPTION_PREFIX}FILE' (a local torchvision Inception-v3 state dict)"
    )


def _batches(images: np.ndarray, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).unsqueeze(1)


def fid_kid(
    extractor: Extractor,
    real: np.ndarray,
    fake: np.ndarray,
    *,
    batch_size: int = 64,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """FID and KID (mean, std over subsets) between uint8 ``N x H x W`` real and fake images.

    KID is the unbiased MMD estimate on ``kid_subsets`` random subsets (without replacement) of
    ``subset_size = min(kid_subset_size, max(2, n_small // 2))`` images per set, ``n_small`` the
    smaller set: half of it, so that subsets differ and ``std`` (the spread of the subset estimates,
    not a standard error of the mean) measures something. Subsets as large as the sets are all the
    whole set, and their std is ~1e-7 by construction; when that cannot be avoided (fewer than 4
    images) ``std`` is null and ``std_null_reason`` says why. Subsets are drawn with torch's global
    generator, seeded here and restored afterwards.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID/KID need at least 2 images per set, got {len(real)} real and {len(fake)} fake")
    n_small = min(len(real), len(fake))
    subset = int(min(kid_subset_size, max(2, n_small // 2)))
    fid = FrechetInceptionDistance(feature=extractor.module, reset_real_features=True)
    with warnings.catch_warnings():  # "KID keeps every feature in memory": a few hundred vectors here
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=extractor.module, subsets=kid_subsets, subset_size=subset)
    for is_real, images in ((True, real), (False, fake)):
        for batch in _batches(images, batch_size):
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {
        "fid": float(fid.compute()),
        "kid": {
            "mean": float(kid_mean),
            "std": float(kid_std) if subset < n_small else None,
            "std_is": KID_STD_IS,
            **({} if subset < n_small else {"std_null_reason": f"every subset of {subset} is the whole set"}),
            "subsets": kid_subsets,
            "subset_size": subset,
        },
        "n_real": int(len(real)),
        "n_fake": int(len(fake)),
    }

"""Where did the generator change the image? Pixel and Grad-CAM differences, cycle SSIM, gallery PNGs.

CycleGAN losses can add or remove disease while keeping the image realistic (Cohen et al., MICCAI
2018), and a realism score cannot see that. Three views of faithfulness, per image:

* ``|translated - input|`` in pixels: what the generator changed, wherever it is;
* the classifier's Grad-CAM on the translated image minus its Grad-CAM on the input, both for the
  label the two domains differ by (:mod:`chestxai.explain.explainer`, the project's explainer):
  where the classifier's evidence moved. pytorch-grad-cam min-max scales each map to [0, 1], so
  the difference shows where evidence appeared (> 0) or vanished (< 0), not how much in logits;
* SSIM (the standard definition: interior windows only, not torchmetrics' padded borders) between
  the input and its cycle reconstruction (a -> b -> a): how much anatomy survives the
  round trip (1 = identical). A high cycle SSIM does not prove the translation kept anatomy: the
  generator can hide the information it needs to undo a change (Chu et al. 2017, "CycleGAN, a
  master of steganography"), which is why the difference maps are shown beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

GALLERY_MIN_SIDE = 128  # tiny images are upscaled (nearest) so the gallery's pixels stay visible


def pixel_difference(inputs: np.ndarray, translated: np.ndarray) -> np.ndarray:
    """``|translated - input| / 255`` per pixel, float32 in [0, 1] (uint8 ``N x H x W`` in)."""
    if inputs.shape != translated.shape:
        raise ValueError(f"inputs {inputs.shape} and translations {translated.shape} differ in shape")
    return np.abs(translated.astype(np.float32) - inputs.astype(np.float32)) / 255.0


def cycle_ssim(inputs: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Per-image SSIM of uint8 ``N x H x W`` inputs and their reconstructions, the standard
    definition (Wang et al. 2004, as scikit-image computes it: Gaussian 11 px window, sigma 1.5,
    population moments, data range 255, mean over interior windows only; see
    :mod:`chestxai.metrics.image_similarity`); the window shrinks to the image below 11 px."""
    from chestxai.metrics.image_similarity import ssim

    if inputs.shape != reconstructed.shape:
        raise ValueError(f"inputs {inputs.shape} and reconstructions {reconstructed.shape} differ in shape")
    return ssim(inputs, reconstructed, data_range=255.0).reshape(-1)


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()) if v.size else float("nan"),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "n": int(v.size),
    }


def gradcam_maps(
    model: torch.nn.Module, preprocess: dict, label_index: int, images: np.ndarray, batch_size: int = 16
) -> tuple[np.ndarray, str]:
    """Grad-CAM heatmaps (``N x S x S`` in [0, 1], S = model input size) of output ``label_index``
    for uint8 images, with the layer the project's explainer picked for this model."""
    from chestxai.explain.explainer import Explainer

    explainer = Explainer(model, method="gradcam")
    maps = explainer.explain_images(
        images, [int(label_index)] * len(images), preprocess, batch_size=batch_size
    )
    return maps, explainer.layer_name


def gradcam_difference(
    model: torch.nn.Module, preprocess: dict, label_index: int, inputs: np.ndarray, translated: np.ndarray
) -> dict[str, object]:
    """Grad-CAM of the translated image minus that of its input (both ``N x S x S``), in [-1, 1]."""
    cam_in, layer = gradcam_maps(model, preprocess, label_index, inputs)
    cam_tr, _ = gradcam_maps(model, preprocess, label_index, translated)
    return {"input": cam_in, "translated": cam_tr, "difference": cam_tr - cam_in, "layer": layer}


# --- gallery PNGs -------------------------------------------------------------------------------
def _upscale(rgb_or_gray: np.ndarray) -> np.ndarray:
    side = min(rgb_or_gray.shape[:2])
    factor = max(1, int(np.ceil(GALLERY_MIN_SIDE / side)))
    if factor == 1:
        return rgb_or_gray
    return np.repeat(np.repeat(rgb_or_gray, factor, axis=0), factor, axis=1)


def save_gray(path: Path, image: np.ndarray) -> Path:
    """A uint8 ``H x W`` image as a grayscale PNG (upscaled when tiny), written atomically."""
    from PIL import Image

    from chestxai.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(_upscale(np.asarray(image, np.uint8))).save(tmp, format="PNG")
    return Path(path)


def save_map(
    path: Path, values: np.ndarray, cmap: str, vmin: float, vmax: float, shape: tuple[int, int] | None = None
) -> Path:
    """A float map as a colour PNG (matplotlib colormap over ``[vmin, vmax]``), resized to ``shape``."""
    import matplotlib

    from chestxai.explain.overlay import resize_heatmap

    values = np.asarray(values, np.float32)
    if shape is not None:
        values = resize_heatmap(values, shape)
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    rgb = (matplotlib.colormaps[cmap](scaled)[..., :3] * 255).round().astype(np.uint8)
    from PIL import Image

    from chestxai.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(_upscale(rgb)).save(tmp, format="PNG")
    return Path(path)

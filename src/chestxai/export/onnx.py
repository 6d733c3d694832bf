"""``chestxai export RUN``: the run's forward pass as ONNX, with a parity check against PyTorch.

What the graph holds: input ``image`` (float32 ``N x 1 x S x S`` in [0, 1], S = the cache size the
run was trained on, i.e. a decoded image resized as ``prepare`` does and divided by 255), then the
checkpoint's preprocessing (:func:`chestxai.models.preprocess.to_input`: resize to the model input
size when it differs, normalise), the model and its output activation; output ``probabilities``
(``N x L``). The batch axis is dynamic. Decoding and the Lanczos resize stay outside (they are
the project's decoder, :mod:`chestxai.data.decode`, which needs no torch), so
``predict --onnx`` gets the same pixels as ``predict RUN``.

Only the forward is exported: heatmaps need gradients and MC dropout needs dropout at inference,
so both stay on the PyTorch path. The model is traced in eval mode (dropout off).

The parity figure is printed and saved beside the model as ``<name>.parity.json``
(:func:`chestxai.rundir.parity_file`). Metadata (``metadata_props["chestxai"]``, JSON): label names, task, preprocessing, the resize
size, the operating thresholds (and their temperature) at export time, the opset and the source run.
The legacy TorchScript exporter is used (``dynamo=False``): the torch.export-based one needs the
``onnxscript`` package, which the ``[export]`` extra does not pull in.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.atomic import atomic_path
from chestxai.rundir import RunDir, parity_file
from chestxai.rundir.guard import check_overwrite
from chestxai.rundir.jsonfile import write_json

log = logging.getLogger(__name__)

OPSET = 17
METADATA_KEY = "chestxai"
INPUT, OUTPUT = "image", "probabilities"
PARITY_TOLERANCE = 1e-4
PARITY_IMAGES = 64


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    n_parity_images: int
    parity_source: str
    opset: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_TOLERANCE


def write_parity(result: ExportResult) -> Path:
    """``<name>.parity.json`` beside the model: the figure the README promises, on disk, whether it
    passed or not (a failed export leaves its model for inspection, and the figure with it)."""
    record = {
        "onnx": result.path.name,
        "max_abs_diff": float(result.max_abs_diff),
        "tolerance": PARITY_TOLERANCE,
        "ok": result.ok,
        "measure": "max abs difference of probabilities, ONNX Runtime vs PyTorch (CPU, float32)",
        "n_images": result.n_parity_images,
        "images": result.parity_source,
        "opset": result.opset,
    }
    return write_json(record, parity_file(result.path))


def _parity_record(path: Path) -> bool:
    """True when ``path`` is a parity record :func:`write_parity` wrote (a re-export may replace it)."""
    try:
        return "max_abs_diff" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False


def resize_matrix(source: int, target: int):
    """``target x source`` matrix ``A`` with ``A @ X @ A.T == to_input``'s resize of a ``source``-px image.

    ``to_input`` resizes with antialiased bilinear interpolation, which the TorchScript ONNX
    exporter cannot express (``aten::_upsample_bilinear2d_aa``). The filter is linear and
    separable, so it is exactly two matrix products; each column of ``A`` is the resize of one
    row impulse (rows of the other factor sum to one), read off the library's own kernel.
    """
    import torch
    import torch.nn.functional as F

    impulses = torch.eye(source).reshape(source, 1, source, 1).expand(source, 1, source, source)
    out = F.interpolate(impulses, size=(target, target), mode="bilinear", align_corners=False, antialias=True)
    return out[:, 0, :, 0].T.contiguous()  # target x source


def _wrapped(model, preprocess: dict, source: int):
    """The exported module: [0, 1] pixels at the cache size -> probabilities."""
    import torch

    size, mean, std = int(preprocess["size"]), float(preprocess["mean"]), float(preprocess["std"])

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("resize", resize_matrix(source, size) if source != size else torch.zeros(0))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = self.resize @ image @ self.resize.T if source != size else image
            return self.model.probabilities(self.model((x - mean) / std))

    return Exported().eval()


def written_by_export(path: Path) -> bool:
    """True when ``path`` is an ONNX file carrying chestxai's metadata (a re-export may replace it)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False
    return any(p.key == METADATA_KEY for p in model.metadata_props)


def parity_images(
    cache_dir: str | None, images: list[str | Path] | None, size: int
) -> tuple[np.ndarray, str]:
    """Real images for the parity check: given files (decoded as ``prepare`` does), else the first
    test images of the run's prepared cache. Refuses to check on nothing."""
    if images:
        from chestxai.data.decode import decode_image
        from chestxai.data.resize import resize_unit

        arrays = [resize_unit(decode_image(p), size) for p in images]
        return np.stack(arrays), f"{len(arrays)} given image file(s)"
    if cache_dir and Path(cache_dir).is_dir():
        from chestxai.data.cache import PreparedCache

        cache = PreparedCache(cache_dir)
        rows = cache.split_rows("test") if cache.has_splits() else np.arange(len(cache))
        rows = (rows if len(rows) else np.arange(len(cache)))[:PARITY_IMAGES]
        if cache.size == size and len(rows):
            return np.asarray(cache.images[np.sort(rows)]), f"{len(rows)} images of the cache {cache_dir}"
    raise FileNotFoundError(
        f"the run's prepared cache ({cache_dir}) is not here to check parity on real images; "
        "pass --parity-images FILE... (PNG/JPEG/DICOM)"
    )


def export_run(
    run_path: str | Path,
    out: str | Path | None = None,
    *,
    images: list[str | Path] | None = None,
    opset: int = OPSET,
    force: bool = False,
) -> ExportResult:
    """Export ``RUN/checkpoint.pt`` to ``out`` (default ``RUN/export/model.onnx``) and check parity.

    Raises ValueError when the ONNX model's probabilities differ from PyTorch's by more than
    ``PARITY_TOLERANCE`` on the parity images (the file is still written, so it can be inspected).
    """
    import torch

    from chestxai.models.trained_run import TrainedRun

    run = RunDir(Path(run_path))
    run.require_dir()
    target = Path(out) if out is not None else run.onnx
    if target.suffix.lower() != ".onnx":
        raise ValueError(f"--out {target} must end in .onnx")
    check_overwrite(target, force, written_by_export, what="ONNX model")
    check_overwrite(parity_file(target), force, _parity_record, what="parity record")
    trained = TrainedRun.open(run, "cpu", single=True)
    model, size, names, epoch = trained.model, trained.image_size, trained.label_names, trained.epoch
    pixels, source = parity_images(trained.cache_dir, images, size)  # fail before the export work
    thresholds = trained.operating_thresholds()
    wrapped = _wrapped(model, trained.preprocess, size)
    example = torch.zeros(2, 1, size, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer/deprecation chatter about the legacy exporter
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                dynamo=False,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=opset,
            )
        _add_metadata(
            tmp,
            {
                "format": 1,
                "label_names": names,
                "task": trained.task,
                "model": trained.model_name,
                "preprocess": trained.preprocess,
                "resize_to": size,
                "input": f"{INPUT}: float32 N x 1 x {size} x {size}, decoded image resized (Lanczos) / 255",
                "output": f"{OUTPUT}: float32 N x {len(names)}",
                "thresholds": thresholds.values,
                "threshold_source": f"{thresholds.source} of {run.root}",
                "temperature": thresholds.temperature,
                "opset": opset,
                "run": str(run.root),
                "checkpoint_epoch": epoch,
            },
        )
    diff = parity(model, trained.preprocess, target, pixels)
    result = ExportResult(target, diff, len(pixels), source, opset)
    write_parity(result)
    if not result.ok:
        raise ValueError(
            f"{target}: ONNX probabilities differ from PyTorch's by {diff:.2e} (> {PARITY_TOLERANCE:g}) on "
            f"{source}; the file was written for inspection, do not deploy it"
        )
    return result


def _add_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta)
    model.doc_string = "chestxai: research software, not for clinical use"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def parity(model, preprocess: dict, path: Path, pixels: np.ndarray) -> float:
    """Max abs difference of probabilities on uint8 ``pixels``: the PyTorch path every other
    command takes (:func:`chestxai.models.predict.predict_probs`) vs onnxruntime on the file."""
    from chestxai.export.runtime import OnnxModel
    from chestxai.models.predict import predict_probs

    ref = predict_probs(model, np.asarray(pixels), preprocess, batch_size=len(pixels) or 1)
    got = OnnxModel(path).forward(pixels, batch_size=len(pixels) or 1)
    return float(np.max(np.abs(ref - got))) if len(ref) else 0.0

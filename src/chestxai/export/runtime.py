"""Score with an exported ONNX model through onnxruntime only: no torch on this path.

:class:`OnnxModel` reads what :mod:`chestxai.export.onnx` stored in the file's metadata (labels,
task, the size images are resized to, thresholds), checked by
:func:`chestxai.export.metadata.check_metadata` (one error line naming the file and field), and exposes the same small interface as a
served PyTorch model (``label_names``, ``task``, ``resize_to``, ``forward``, ``decisions``), so
``chestxai predict --onnx`` runs the same pipeline as ``predict RUN``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chestxai.export.metadata import check_metadata, fixed_dim, parse_metadata
from chestxai.metrics.decisions import decide

METADATA_KEY = "chestxai"  # the same key chestxai.export.onnx writes


class OnnxModel:
    def __init__(self, path: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ValueError("predict --onnx needs onnxruntime: pip install 'chestxai[export]'") from exc
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"--onnx {self.path} does not exist; make one with `chestxai export RUN`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f"{self.path} is not a loadable ONNX model ({str(exc).strip()[:200]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.meta = check_metadata(
            self.path,
            parse_metadata(self.path, raw),
            output_width=fixed_dim(outputs[0].shape, 1) if outputs else None,
            input_side=fixed_dim(inputs[0].shape, 3) if inputs else None,
        )
        self.label_names: list[str] = self.meta["label_names"]
        self.task: str = self.meta["task"]
        self.resize_to: int = self.meta["resize_to"]
        self.thresholds: dict[str, float] = self.meta["thresholds"]
        self.temperature = self.meta["temperature"]
        self.input_name = self.session.get_inputs()[0].name

    @property
    def description(self) -> str:
        return f"{self.meta.get('model', '?')} (ONNX {self.path.name})"

    def forward(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 ``N x S x S`` -> float32 ``N x L`` probabilities (batches of ``batch_size``)."""
        images = np.asarray(images)
        out = []
        for start in range(0, len(images), max(1, int(batch_size))):
            x = images[start : start + batch_size].astype(np.float32)[:, None] / np.float32(255.0)
            out.append(self.session.run(None, {self.input_name: x})[0].astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)), np.float32)

    def decisions(self, probs: np.ndarray) -> np.ndarray:
        return decide(probs, self.task, [self.thresholds[n] for n in self.label_names], self.temperature)

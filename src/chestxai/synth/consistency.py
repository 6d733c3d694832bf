"""Label consistency: does a classifier trained on real images put a translated image in the target domain?

A domain text becomes a decision rule on the classifier's outputs at its *operating* thresholds
(``RUN/thresholds.json`` via :func:`chestxai.rundir.thresholds.operating_thresholds`, with its
calibration temperature when ``evaluate --calibrated`` chose them; else the checkpoint's 0.5)::

    LABEL          binary/multi-label: p(LABEL) >= t(LABEL)        multi-class: argmax is LABEL
    not:LABEL      p(LABEL) <  t(LABEL)                            argmax is not LABEL
    No Finding     every p(label) < t(label)                       argmax is the normal-like class

The same rule applied to *real* images of the target domain is the ceiling to read the share
against (a classifier that finds 80% of real pneumonia cannot be expected to find more among
fakes), and applied to the untranslated inputs the floor (how many already looked like the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class ClassifierJudge:
    """A classifier run loaded for decisions (:func:`load_judge`): model, preprocessing, labels, thresholds."""

    run: Path
    model: torch.nn.Module
    model_name: str
    preprocess: dict[str, float]
    label_names: list[str]
    task: str
    thresholds: dict[str, float]
    threshold_source: str
    temperature: float | None

    def probabilities(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 ``N x H x W`` -> probabilities ``N x L`` (temperature applied when thresholds need it)."""
        from chestxai.models.preprocess import to_input

        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = to_input(np.asarray(images[start : start + batch_size]), self.preprocess).to(device)
                logits = self.model(x).float()
                if self.temperature:
                    logits = logits / float(self.temperature)
                out.append(self.model.probabilities(logits).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)), np.float32)

    def index(self, label: str) -> int | None:
        lowered = [n.lower() for n in self.label_names]
        return lowered.index(label.lower()) if label.lower() in lowered else None

    def rule(self, domain: str) -> tuple[str, Any]:
        """(human-readable rule, function probs N x L -> bool N) for a domain text, or ValueError."""
        from chestxai.labels import is_normal_name
        from chestxai.synth.domains import parse_domain

        spec = parse_domain(domain)
        names = self.label_names
        t = np.array([self.thresholds[n] for n in names], dtype=np.float64)
        literal = self.index(spec.text) if spec.label is None else None
        if spec.label is None and literal is None:
            if self.task == "multiclass":
                normal = [i for i, n in enumerate(names) if is_normal_name(n)]
                if len(normal) != 1:
                    raise ValueError(
                        f"'No Finding': the classifier's classes {names} have no single normal-like class"
                    )
                k = normal[0]
                return f"argmax is {names[k]}", lambda p: p.argmax(axis=1) == k
            return (
                "every " + ", ".join(f"p({n}) < {t[j]:.3g}" for j, n in enumerate(names)),
                lambda p: (p < t[None, :]).all(axis=1),
            )
        label = spec.text if literal is not None else str(spec.label)
        k = self.index(label)
        if k is None:
            raise ValueError(f"the classifier has no output for {label!r} (its labels: {', '.join(names)})")
        present = spec.present
        if self.task == "multiclass":
            if present:
                return f"argmax is {names[k]}", lambda p: p.argmax(axis=1) == k
            return f"argmax is not {names[k]}", lambda p: p.argmax(axis=1) != k
        if present:
            return f"p({names[k]}) >= {t[k]:.3g}", lambda p: p[:, k] >= t[k]
        return f"p({names[k]}) < {t[k]:.3g}", lambda p: p[:, k] < t[k]

    def info(self) -> dict[str, Any]:
        return {
            "run": str(self.run),
            "model": self.model_name,
            "labels": list(self.label_names),
            "task": self.task,
            "thresholds": dict(self.thresholds),
            "threshold_source": self.threshold_source,
            "temperature": self.temperature,
            "input_size": int(self.preprocess["size"]),
        }


def load_judge(run: str | Path, device: str | torch.device = "cpu") -> ClassifierJudge:
    from chestxai.models.trained_run import TrainedRun
    from chestxai.rundir import RunDir

    rd = RunDir(Path(run))
    if not rd.checkpoint.is_file():
        raise FileNotFoundError(
            f"--classifier {run}: no checkpoint.pt there; give a classifier run trained with `chestxai train`"
        )
    trained = TrainedRun.open(rd, device, single=True)
    ops = trained.operating_thresholds()
    return ClassifierJudge(
        run=rd.root,
        model=trained.model,
        model_name=trained.model_name,
        preprocess=trained.preprocess,
        label_names=trained.label_names,
        task=trained.task,
        thresholds=dict(ops.values),
        threshold_source=ops.source,
        temperature=ops.temperature,
    )


def consistency(judge: ClassifierJudge, domain: str, fakes: np.ndarray, real_target: np.ndarray,
                inputs: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Share of ``fakes`` the classifier puts in ``domain``, beside the same share for the real
    target images (ceiling) and the untranslated inputs (floor)."""
    text, decide = judge.rule(domain)

    def share(images: np.ndarray) -> tuple[float | None, int]:
        if len(images) == 0:
            return None, 0
        return float(np.mean(decide(judge.probabilities(images)))), int(len(images))

    fake_share, n = share(fakes)
    real_share, n_real = share(real_target)
    input_share, n_in = share(inputs)
    return {
        "share": fake_share,
        "n": n,
        "target": domain,
        "rule": text,
        "real_target_share": real_share,
        "n_real_target": n_real,
        "input_share": input_share,
        "n_input": n_in,
    }

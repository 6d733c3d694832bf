"""Every file name of a run directory, in one place: the interface between the stages.

``runs/<name>/`` holds::

    config.yaml            fully resolved config (train), or the ensemble's description
    checkpoint.pt          best weights + what rebuilds model and preprocessing (immutable after training)
    last.pt                last-epoch checkpoint (resume)
    history.csv            one row per epoch
    splits.csv             image_id, row (in the cache), split: the exact split training used
    ensemble.json          members and weights (an ensemble run; it has no checkpoint.pt)
    thresholds.json        operating thresholds chosen by ``evaluate`` (policy, chosen_on, epoch)
    predictions.csv        test split (+ the val rows thresholds were chosen on)
    metrics.json           test split metrics
    figures/               test split figures
    predictions-<split>.csv, metrics-<split>.json, figures-<split>/   any other evaluated split
    cams/index.csv         image_id, label, method, split, overlay
    cams/<method>/         heatmaps.npy/.csv, boxes.csv, scores.csv, overlay PNGs (test split)
    cams/<method>@<split>/ the same for another split (``@files``: images given with --images)
    explain_metrics.json   explanation metrics, one entry per method and split
    explain_compare.csv/.md  methods ranked
    explain_layers.csv/.md   target layers of one method ranked (``explain --compare-layers``)
    report.html
    scorecard/             ``chestxai scorecard``: scorecard.json and report.html (ScorecardDir)
    cost.json              inference speed / sizes measured by ``compare`` on a named machine
    uncertainty/<method>/  synth_metrics.json  export/model.onnx (+ model.parity.json)  study.json  best.yaml   (phase 2;
                           synthesis and study folders: chestxai.rundir.synth / chestxai.rundir.study)

The *test* split keeps the short names (what every later stage reads by default); every other
split gets its own suffixed files, so ``evaluate --split val`` never replaces the test results.
No other module spells one of these names: they ask :class:`RunDir`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: the split whose outputs carry the plain names
PRIMARY_SPLIT = "test"
#: ``RUN/uncertainty/conformal/``: not an uncertainty method, the split-conformal calibration
CONFORMAL = "conformal"


def _split_suffix(split: str) -> str:
    if not split or not re.fullmatch(r"[A-Za-z0-9_.+-]+", split) or split.startswith("."):
        raise ValueError(f"split name {split!r} cannot name a file; use letters, digits, '_', '-', '.'")
    return "" if split == PRIMARY_SPLIT else f"-{split}"


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # --- training ------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def splits(self) -> Path:
        return self.root / "splits.csv"

    @property
    def ensemble(self) -> Path:
        return self.root / "ensemble.json"

    @property
    def is_ensemble(self) -> bool:
        return self.ensemble.is_file()

    # --- evaluation (per split) ----------------------------------------------------------
    @property
    def thresholds(self) -> Path:
        return self.root / "thresholds.json"

    def predictions_for(self, split: str = PRIMARY_SPLIT) -> Path:
        return self.root / f"predictions{_split_suffix(split)}.csv"

    def metrics_for(self, split: str = PRIMARY_SPLIT) -> Path:
        return self.root / f"metrics{_split_suffix(split)}.json"

    def figures_for(self, split: str = PRIMARY_SPLIT) -> Path:
        return self.root / f"figures{_split_suffix(split)}"

    @property
    def predictions(self) -> Path:
        return self.predictions_for(PRIMARY_SPLIT)

    @property
    def metrics(self) -> Path:
        return self.metrics_for(PRIMARY_SPLIT)

    @property
    def figures(self) -> Path:
        return self.figures_for(PRIMARY_SPLIT)

    # --- explanation ---------------------------------------------------------------------
    @property
    def cams(self) -> Path:
        return self.root / "cams"

    @property
    def cams_index(self) -> Path:
        return self.cams / "index.csv"

    def cam_method(self, method: str, split: str = PRIMARY_SPLIT) -> Path:
        """``cams/<method>/`` for the test split, ``cams/<method>@<split>/`` for any other image set."""
        return self.cams / explain_key(method, split)

    @property
    def explain_metrics(self) -> Path:
        return self.root / "explain_metrics.json"

    @property
    def explain_compare_csv(self) -> Path:
        return self.root / "explain_compare.csv"

    @property
    def explain_compare_md(self) -> Path:
        return self.root / "explain_compare.md"

    @property
    def explain_layers_csv(self) -> Path:
        return self.root / "explain_layers.csv"

    @property
    def explain_layers_md(self) -> Path:
        return self.root / "explain_layers.md"

    # --- report and the phase 2 stages ---------------------------------------------------
    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def scorecard(self) -> ScorecardDir:
        """``chestxai scorecard RUN``'s default output folder (``--out`` elsewhere)."""
        return ScorecardDir(self.root / "scorecard")

    def uncertainty(self, method: str) -> Path:
        return self.root / "uncertainty" / safe_name(method)

    def uncertainty_dir(self, method: str) -> UncertaintyDir:
        """The files of ``chestxai uncertainty --method <method>`` (see :class:`UncertaintyDir`)."""
        return UncertaintyDir(self.uncertainty(method))

    @property
    def conformal(self) -> UncertaintyDir:
        """``chestxai uncertainty --conformal``: ``uncertainty/conformal/uncertainty.json`` (its
        ``conformal`` entry is the calibration ``predict`` and ``serve`` apply) and ``conformal.csv``."""
        return UncertaintyDir(self.root / "uncertainty" / CONFORMAL)

    @property
    def cost(self) -> Path:
        """``cost.json``: inference speed and sizes measured by ``compare`` (per machine, labelled)."""
        return self.root / "cost.json"

    @property
    def synth_metrics(self) -> Path:
        return self.root / "synth_metrics.json"

    @property
    def onnx(self) -> Path:
        return self.root / "export" / "model.onnx"

    @property
    def study(self) -> Path:
        return self.root / "study.json"

    @property
    def best_config(self) -> Path:
        return self.root / "best.yaml"

    # --- checks --------------------------------------------------------------------------
    def require_dir(self) -> Path:
        if not self.root.is_dir():
            raise FileNotFoundError(f"run directory {self.root} does not exist")
        return self.root

    def require_checkpoint(self) -> Path:
        if not self.checkpoint.exists():
            hint = (
                f"{self.root} is an ensemble (ensemble.json); this needs a single trained model, e.g. one of "
                f"its members"
                if self.is_ensemble
                else f"is it a run directory? Train one with `chestxai train --config ... --run-dir {self.root}`"
            )
            raise FileNotFoundError(f"{self.root} has no checkpoint.pt: {hint}")
        return self.checkpoint


@dataclass(frozen=True)
class ScorecardDir:
    """``chestxai scorecard --out DIR``: ``scorecard.json`` (the figures, layout in docs/EXPLAIN.md's
    "scorecard.json") and ``report.html`` (the same, for people)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def json(self) -> Path:
        return self.root / "scorecard.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def chexlocalize(self, method: str, layer: str) -> Path:
        """``--chexlocalize``: one (method, layer)'s maps and masks in CheXlocalize's formats."""
        return self.root / "chexlocalize" / f"{safe_name(method)}-{safe_name(layer)}"


@dataclass(frozen=True)
class DicomwebDir:
    """``chestxai dicomweb --out DIR``: ``predictions.csv`` (as ``predict`` writes it, one row per
    retrieved instance), ``dicom/`` (each instance's SR and Parametric Map, what ``--store`` sends) and
    ``dicomweb.csv`` (the ledger: one row per instance retrieved and per object stored)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def dicom(self) -> Path:
        return self.root / "dicom"

    @property
    def ledger(self) -> Path:
        return self.root / "dicomweb.csv"


@dataclass(frozen=True)
class BenchDir:
    """``chestxai bench lesions --out DIR``: the benchmark's task cache, its runs and its results.

    ``DIR/bench.json`` (figures), ``DIR/report.html``, ``DIR/task/`` (the prepared cache of the
    semi-synthetic task), ``DIR/task-clean/`` (shortcut runs: the test images without the cue), ``DIR/run/`` (the
    trained run directory), ``DIR/figures/``; with ``--scorecard`` also ``DIR/run-seed<N>/``,
    ``DIR/run-<model>/`` (the extra runs) and ``DIR/scorecard/`` (scorecard.json, report.html).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def bench_json(self) -> Path:
        return self.root / "bench.json"

    @property
    def report(self) -> Path:
        return RunDir(self.root).report

    @property
    def task(self) -> Path:
        return self.root / "task"

    @property
    def run(self) -> RunDir:
        return RunDir(self.root / "run")

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def examples(self) -> Path:
        """Heatmaps of the best method at every layer on a few test lesions (the report draws them)."""
        return self.figures / "examples.npz"

    @property
    def examples_figure(self) -> Path:
        return self.figures / "examples.png"

    def seed_run(self, seed: int) -> RunDir:
        """``--scorecard``: the benchmark's model retrained with another seed (repeatability)."""
        return RunDir(self.root / f"run-seed{seed}")

    def architecture_run(self, model: str) -> RunDir:
        """``--scorecard``: another architecture (``model``) trained on the same task (reproducibility)."""
        return RunDir(self.root / f"run-{safe_name(model)}")

    @property
    def scorecard(self) -> ScorecardDir:
        """``--scorecard``: the trust scorecard of ``run/`` on the lesion masks."""
        return ScorecardDir(self.root / "scorecard")

    @property
    def permuted_task(self) -> Path:
        """``--label-sanity-limit``: the same images with permuted labels (a second prepared cache)."""
        return self.root / "task-permuted"

    @property
    def permuted_run(self) -> RunDir:
        """``--label-sanity-limit``: the model trained on the permuted labels."""
        return RunDir(self.root / "run-permuted")

    @property
    def clean_task(self) -> Path:
        """The shortcut experiment's test images without the cue (a second prepared cache)."""
        return self.root / "task-clean"


@dataclass(frozen=True)
class UncertaintyDir:
    """``RUN/uncertainty/<method>/``: ``predictions.csv`` (val + evaluated split: mean probability,
    std, entropy, mutual information, decision per label), ``uncertainty.json`` (referral,
    risk-coverage, calibration, gallery), ``figures/`` and ``heatmaps/`` (one PNG per selected case)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def summary(self) -> Path:
        return self.root / "uncertainty.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def heatmaps(self) -> Path:
        return self.root / "heatmaps"

    def heatmap(self, image_id: str, label: str) -> Path:
        return self.heatmaps / f"{safe_name(image_id)}_{safe_name(label)}.png"

    @property
    def conformal_sets(self) -> Path:
        """``--conformal``: one row per val/test image with its set or triage bin."""
        return self.root / "conformal.csv"


def explain_key(method: str, split: str = PRIMARY_SPLIT) -> str:
    """How explanations of ``method`` on ``split`` are named (folder and explain_metrics.json entry)."""
    return safe_name(method) if split == PRIMARY_SPLIT else f"{safe_name(method)}@{safe_name(split)}"


def safe_name(text: str) -> str:
    """A file-name-safe version of an id, label or method (keeps letters, digits, ``.-_+``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._") or "_"


def parity_file(onnx: str | Path) -> Path:
    """``<name>.parity.json`` beside an exported ``<name>.onnx`` (anywhere ``--out`` put it): the
    parity check the export passed, so the figure travels with the model."""
    onnx = Path(onnx)
    return onnx.with_name(f"{onnx.stem}.parity.json")


def prob_column(label: str) -> str:
    return f"p_{label}"


def target_column(label: str) -> str:
    return f"y_{label}"

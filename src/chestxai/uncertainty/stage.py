"""``chestxai uncertainty``: read a run directory, write ``RUN/uncertainty/<method>/``.

Order of work (everything that can fail on bad input fails before the first forward): the
method and ``--passes``, the run and its checkpoint(s), ensemble agreement, dropout presence, the
cache and split, the output folder (never a folder this command did not write, unless
``--force``). Then the validation and evaluated splits are predicted with ``passes`` samples
each (:func:`~chestxai.uncertainty.api.predict_with_uncertainty`, batched, progress bar), and the
arrays go through the pure analysis functions (:mod:`.gallery_select`, :mod:`.referral`,
:mod:`.risk_coverage`, calibration from :mod:`chestxai.metrics.calibration`).

Decisions use the run's operating thresholds (``RUN/thresholds.json`` via
:func:`~chestxai.rundir.thresholds.operating_thresholds`; the temperature they were chosen
with is applied first); an ensemble run's are its own, chosen on its weighted mean. Runs given
together have none of their own, so their weights and thresholds are fitted on the validation
split first (:mod:`.given_runs`), never borrowed from the first member. The run's own ``predictions.csv`` and ``metrics.json`` are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from chestxai.atomic import atomic_dir
from chestxai.metrics.bootstrap import UNIT_NOTES, bootstrap_unit, count_clusters
from chestxai.metrics.calibration import apply_temperature, calibration_summary
from chestxai.metrics.classification import classification_metrics
from chestxai.models.preprocess import to_input
from chestxai.rundir import RunDir
from chestxai.rundir.guard import check_not_training, has_marker
from chestxai.rundir.jsonfile import write_json
from chestxai.rundir.layout import UncertaintyDir
from chestxai.rundir.predictions import write_predictions
from chestxai.uncertainty import figures as figs
from chestxai.uncertainty.api import predict_with_uncertainty
from chestxai.uncertainty.gallery_select import select_cases, write_gallery
from chestxai.uncertainty.given_runs import fit_given_runs, no_validation_error
from chestxai.uncertainty.measures import confidence_uncertainty, image_uncertainty, softmax_uncertainty
from chestxai.uncertainty.methods import check_method, get_method, list_methods
from chestxai.uncertainty.outputs import uncertainty_frame
from chestxai.uncertainty.referral import BASELINES, baseline_rankings, referral_analysis, referral_for_target
from chestxai.uncertainty.risk_coverage import decision_loss, risk_coverage_curve
from chestxai.uncertainty.sampler import Sampler

log = logging.getLogger(__name__)
WRITTEN_BY = "chestxai uncertainty"
N_BINS = 10


AUC_NOTE = (
    "mean_probs: macro ROC-AUC of the probabilities averaged over the passes (augmented inputs for TTA, "
    "dropout masks for MC dropout, members for an ensemble), which every referral row at 0% referred "
    "reports; deterministic: the same model on the plain inputs, what `chestxai evaluate` reports. They "
    "differ because averaging over perturbed inputs changes the scores, not because of a bug"
)


def _two_aucs(test: dict, targets: np.ndarray, task: str, names: list[str], th) -> dict:
    """The macro ROC-AUC of the averaged probabilities and of the deterministic ones, side by side, so
    that two AUCs for one run (evaluate 0.508, TTA 0.471) come with the reason they differ."""
    import warnings

    with warnings.catch_warnings():  # an absent class is NaN here; evaluate already warns about it
        warnings.simplefilter("ignore")
        auc = {k: classification_metrics(test[k], targets, task, names, th)["macro"]["roc_auc"]
               for k in ("mean", "deterministic")}  # fmt: skip
    clean = {k: (float(v) if np.isfinite(v) else None) for k, v in auc.items()}
    return {"mean_probs": clean["mean"], "deterministic": clean["deterministic"], "note": AUC_NOTE}


def _check_output(out_root: Path, summary: Path, force: bool) -> None:
    if out_root.exists() and any(out_root.iterdir()) and not force and not has_marker(WRITTEN_BY)(summary):
        raise FileExistsError(
            f"{out_root} exists and was not written by `chestxai uncertainty`; move it away or pass --force"
        )


def _weights_source(sampler: Sampler, fitted) -> str | None:
    if fitted is not None:
        return (
            f"fitted on val log-loss for the runs given together ({fitted.val_log_loss:.4f}; members "
            + ", ".join(f"{v:.4f}" for v in fitted.member_val_log_loss)
            + ")"
        )
    return str(sampler.trained.source) if sampler.weights is not None else None


def build_sampler(
    run: RunDir, method: str, dropout: float | None, members: Sequence[str | Path], device: str
) -> Sampler:
    """Read and check the model(s); every bad-input error of the stage is raised here."""
    chosen = get_method(method)
    if members and chosen.single_model:
        takes = " or ".join(n for n in list_methods() if not get_method(n).single_model)
        raise ValueError(f"extra runs {list(map(str, members))} only make sense with --method {takes}")
    if dropout is not None and not chosen.takes_dropout:
        takes = " or ".join(n for n in list_methods() if get_method(n).takes_dropout)
        raise ValueError(f"--dropout only applies to --method {takes}, not {method}")
    return chosen.open(method, run, device, members, dropout)


def predict_rows(
    sampler: Sampler, images, rows: np.ndarray, passes: int, seed: int, batch_size: int, device,
    progress: bool, desc: str, keep_samples: bool = False,
) -> dict[str, np.ndarray]:  # fmt: skip
    """All measures for cache ``rows``; batch ``b`` is seeded by ``(seed, its first position)``.
    ``keep_samples``: also return ``samples`` (``K x N x L``)."""
    parts: dict[str, list] = {}
    source = None
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress, leave=False):
        x = to_input(np.asarray(images[rows[start : start + batch_size]]), sampler.preprocess).to(device)
        out = predict_with_uncertainty(
            sampler.model, x, sampler.method, passes, (seed * 1_000_003 + start) % 2**63, sampler.dropout,
            preprocess=sampler.member_preprocess or sampler.preprocess, draw_offset=start,
            weights=sampler.weights,
        )  # fmt: skip
        source = str(out.pop("dropout_source", "")) or source
        samples = out.pop("samples")
        if keep_samples:
            parts.setdefault("samples", []).append(np.asarray(samples))
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    n_out = len(sampler.label_names)
    result = {
        k: np.concatenate(v, axis=1 if k == "samples" else 0) if v else np.zeros((0, n_out))
        for k, v in parts.items()
    }
    result["dropout_source"] = source  # type: ignore[assignment]
    return result


def uncertainty_run(
    run_dir: str | Path,
    method: str = "mc-dropout",
    passes: int = 30,
    split: str = "test",
    dropout: float | None = None,
    members: Sequence[str | Path] = (),
    *,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    n_gallery: int = 4,
    figures: bool = True,
    force: bool = False,
    progress: bool = False,
) -> dict:
    """Run the stage (see the module docstring); returns what ``uncertainty.json`` holds."""
    chosen = check_method(method, passes)
    if int(batch_size) < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    run = RunDir(Path(run_dir))
    run.require_dir()
    run.predictions_for(split)  # a split that cannot name a file fails here
    check_not_training(run, force, "measure its uncertainty")
    out = run.uncertainty_dir(method)
    _check_output(out.root, out.summary, force)
    sampler = build_sampler(run, method, dropout, members, device)
    device = sampler.trained.device
    inputs = sampler.trained.inputs()
    rows, val_rows = inputs.rows(split), inputs.optional_rows("val") if split != "val" else np.zeros(0, int)
    cache, names, task = inputs.cache, sampler.label_names, sampler.task
    operating = sampler.trained.operating_thresholds()
    fitted = None
    if members:  # runs given together: fit their own weights and thresholds on val (module given_runs)
        fit_rows = val_rows if split != "val" else rows
        if not len(fit_rows):
            raise no_validation_error(sampler.members)
        raw = predict_rows(
            sampler, cache.images, fit_rows, passes, seed, batch_size, device, progress, "val (fit)", True
        )
        fitted = fit_given_runs(raw["samples"], cache.labels[fit_rows], task, names)
        sampler.weights, operating = fitted.weights, fitted.thresholds
    th = None if task == "multiclass" else np.array([operating.values[n] for n in names])

    def predict(r: np.ndarray, desc: str) -> dict:
        res = predict_rows(sampler, cache.images, r, passes, seed, batch_size, device, progress, desc)
        if operating.temperature:  # thresholds were chosen on temperature-scaled probabilities
            for k in ("mean", "deterministic"):
                res[k] = apply_temperature(res[k], operating.temperature, task)
        return res

    log.info("%s on %d %s images (%d val), %s", method, len(rows), split, len(val_rows), sampler.batching)
    test = predict(rows, split)
    if fitted is not None and len(val_rows):  # val was predicted for the fit: reweighted, not re-run
        val = {**fitted.summary, "dropout_source": None}
        val.pop("samples")
    else:
        val = predict(val_rows, "val") if len(val_rows) else None
    targets, val_targets = cache.labels[rows], cache.labels[val_rows]
    patients = cache.frame["patient_id"].astype(str).to_numpy()[rows]
    ranked = {k: image_uncertainty(test[k], task) for k in chosen.rankings}
    analysis = referral_analysis(
        test["mean"], ranked, targets, task, th, confidence_probs=test["deterministic"],
        patient_ids=patients, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    target_referral = {}
    if val is not None:
        val_ranked = {k: image_uncertainty(val[k], task) for k in chosen.rankings}
        val_ranked["confidence"] = confidence_uncertainty(val["deterministic"], th, task)
        val_ranked["softmax"] = softmax_uncertainty(val["deterministic"], task)
        test_ranked = {
            **ranked,
            "confidence": confidence_uncertainty(test["deterministic"], th, task),
            "softmax": softmax_uncertainty(test["deterministic"], task),
        }
        for k, vu in val_ranked.items():
            target_referral[k] = referral_for_target(
                val["mean"], vu, val_targets, test["mean"], test_ranked[k], targets, task, th
            )
    unit = bootstrap_unit(patients, len(rows))
    summary = {
        "written_by": WRITTEN_BY,
        "format": 1,
        "run": str(run.root),
        "method": method,
        "passes": passes if chosen.uses_passes else len(sampler.members),
        "split": split,
        "seed": seed,
        "label_names": names,
        "task": task,
        "n_images": len(rows),
        "n_patients": count_clusters(patients, len(rows)),
        "dropout": test["dropout_source"] if chosen.takes_dropout else None,
        "members": sampler.members,
        "member_weights": sampler.weights,
        "member_weights_source": _weights_source(sampler, fitted),
        "batching": sampler.batching,
        "thresholds": {
            "values": operating.values,
            "source": operating.source,
            "temperature": operating.temperature,
        },
        "bootstrap": {
            "n_boot": n_boot,
            "level": 0.95,
            "seed": seed,
            "method": "percentile",
            "unit": unit,
            "note": f"{UNIT_NOTES[unit]}; the retained set is the ranking's choice on the observed data",
        },  # fmt: skip
        "roc_auc": _two_aucs(test, targets, task, names, th),
        "rankings": {
            "method": list(chosen.rankings),
            "baselines": list(BASELINES),
        },
        **analysis,
        "definitions": {
            "aurc": "mean over k=1..n of the error rate among the k most certain cases (Geifman et al. 2018)",
            "augrc": "trapezoidal area under (coverage, errors among the accepted cases / n) from (0, 0), one "
            "point per distinct uncertainty value (Traub et al. 2024, as fd-shifts computes it)",
            "error": "share of an image's known labels decided wrongly at the operating thresholds",
            "correct": "in confidence_correctness.png, an image whose error is 0: for a multi-label task every "
            "known label decided right (exact match), not per-label correctness",
            "image_uncertainty": "the largest per-label value of the measure",
            "confidence": "minus the distance of the deterministic model's p from the threshold",
            "softmax": "the softmax baseline (Bernhardt et al. 2022): 1 - max p of the deterministic model "
            "(multi-class), else 0.5 - |p - 0.5| of its least certain label",
        },
        "target_referral": target_referral,
        "calibration": {
            "n_bins": N_BINS,
            "bins": "equal-width over [0, 1]",
            "mean": calibration_summary(test["mean"], targets, task, names, N_BINS),
            "deterministic": calibration_summary(test["deterministic"], targets, task, names, N_BINS),
        },
    }
    loss = decision_loss(test["mean"], targets, task, th)
    ids = cache.frame["image_id"].to_numpy(str)[rows]
    cases = select_cases(test, ranked["entropy"], loss, targets, task, th, n_gallery)
    # written in a staging folder renamed into place: a kill leaves nothing that blocks a re-run
    replace = out.summary.is_file() and has_marker(WRITTEN_BY)(out.summary)
    with atomic_dir(out.root, merge=not replace) as tmp:
        staged = UncertaintyDir(tmp)
        summary["gallery"] = write_gallery(
            sampler, cache.images, rows, ids, names, test, targets, cases, staged, passes, seed
        )
        parts = [("val", val_rows, val)] if val is not None else []
        frame = uncertainty_frame(cache.frame, parts + [(split, rows, test)], names, th, task, cache.labels)
        write_predictions(frame, staged.predictions)
        if figures:
            curves_u = {
                **ranked,
                **baseline_rankings(test["mean"], targets, task, th, test["deterministic"], seed),
            }
            curves = {k: risk_coverage_curve(u, loss) for k, u in curves_u.items()}
            correct = np.nan_to_num(loss, nan=0.0) == 0
            written = figs.write_figures(summary, curves, ranked, correct, staged.figures)
            summary["figures"] = {name: str(Path(p).relative_to(staged.root)) for name, p in written.items()}
        write_json(summary, staged.summary)
    log.info("wrote %s", out.root)
    return summary

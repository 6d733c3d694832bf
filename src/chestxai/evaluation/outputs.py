"""Write what evaluating one split produces, under the names :class:`~chestxai.rundir.RunDir`
gives that split: ``predictions[-split].csv``, ``metrics[-split].json``, ``figures[-split]/`` and,
for the run's own cache, ``thresholds.json``. ``evaluate`` and ``ensemble`` both write through
here, so an ensemble run directory has exactly the files of a trained one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import to_jsonable, write_json
from chestxai.rundir.predictions import predictions_frame, write_predictions
from chestxai.rundir.thresholds import write_thresholds

log = logging.getLogger(__name__)


@dataclass
class SplitScores:
    """Probabilities and targets of one split's images (and who they are)."""

    split: str
    image_ids: np.ndarray
    patient_ids: np.ndarray
    probs: np.ndarray
    targets: np.ndarray


def write_predictions_for(dest: RunDir, split: str, parts: list[SplitScores], label_names: list[str]):
    frame = pd.concat(
        [
            predictions_frame(
                p.image_ids, p.patient_ids, [p.split] * len(p.probs), p.probs, p.targets, label_names
            )
            for p in parts
        ],
        ignore_index=True,
    )
    return write_predictions(frame, dest.predictions_for(split))


def write_split_outputs(
    dest: RunDir,
    result: dict,
    parts: list[SplitScores],
    *,
    figures: bool = True,
    history: pd.DataFrame | None = None,
    thresholds_for: RunDir | None = None,
    epoch: int | None = None,
    checkpoint: str | None = None,
) -> dict:
    """Write predictions, figures and metrics of ``result["split"]`` into ``dest``; the last of
    ``parts`` is the evaluated split. With ``thresholds_for``, the chosen thresholds become that
    run's operating thresholds (``thresholds.json``). Returns the metrics exactly as written."""
    split, names = result["split"], result["label_names"]
    write_predictions_for(dest, split, parts, names)
    th = result["thresholds"]
    th["stored_in"] = None
    if thresholds_for is not None and th["values"] and th["chosen_on"] in ("val", "fixed"):
        write_thresholds(
            thresholds_for,
            th["values"],
            policy=th["policy"],
            chosen_on=th["chosen_on"],
            epoch=epoch,
            checkpoint=checkpoint,
            evaluated_split=split,
            temperature=(result.get("calibrated") or {}).get("temperature"),
        )
        th["stored_in"] = str(thresholds_for.thresholds)
        log.info("stored %s thresholds in %s", th["policy"], thresholds_for.thresholds)
    if figures:
        from chestxai.metrics.run_figures import write_figures

        scored = parts[-1]
        written = write_figures(
            dest.figures_for(split),
            scored.probs,
            scored.targets,
            result["task"],
            names,
            th["values"],
            result["calibration"].get("temperature"),
            history,
        )
        result["figures"] = sorted(written)
    result = to_jsonable(result)  # what is returned is exactly what metrics.json holds (NaN -> None)
    write_json(result, dest.metrics_for(split))
    log.info("wrote %s, %s", dest.predictions_for(split), dest.metrics_for(split))
    return result

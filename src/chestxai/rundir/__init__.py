"""The run directory: the interface between training, evaluation, explanation and reports.

:class:`RunDir` names every artefact (:mod:`chestxai.rundir.layout` lists them); the format of
each lives beside it: JSON files (:mod:`~chestxai.rundir.jsonfile`), operating thresholds
(:mod:`~chestxai.rundir.thresholds`), ``predictions.csv`` (:mod:`~chestxai.rundir.predictions`),
the CSV tables (:mod:`~chestxai.rundir.tables`) and the no-silent-overwrite checks
(:mod:`~chestxai.rundir.guard`). Every stage after training reads from here and never needs the
training process. The prepared cache a run was trained on is ``config["data"]["cache_dir"]`` in
the checkpoint's config (or the ensemble's ``config.yaml``).
"""

from chestxai.rundir.experiment import ExperimentDir
from chestxai.rundir.layout import (
    PRIMARY_SPLIT,
    BenchDir,
    DicomwebDir,
    RunDir,
    ScorecardDir,
    UncertaintyDir,
    explain_key,
    parity_file,
    prob_column,
    safe_name,
    target_column,
)
from chestxai.rundir.study import StudyDir
from chestxai.rundir.synth import GeneratedDir, SynthRunDir

__all__ = [
    "PRIMARY_SPLIT",
    "BenchDir",
    "DicomwebDir",
    "ExperimentDir",
    "GeneratedDir",
    "StudyDir",
    "SynthRunDir",
    "RunDir",
    "ScorecardDir",
    "UncertaintyDir",
    "explain_key",
    "parity_file",
    "prob_column",
    "safe_name",
    "target_column",
]

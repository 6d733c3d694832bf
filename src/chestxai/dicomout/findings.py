"""What the DICOM writer is given: one source image's results, in plain types.

The writer never sees a model: :class:`DicomFindings` carries the numbers ``predict`` already
computed (probabilities, the run's operating thresholds and decisions, the explained label's
heatmap and boxes) and who computed them (:class:`AlgorithmIdentification`, TID 4019). So the
DICOM objects hold exactly the values of the CSV/PNG path.

The heatmap is the explainer's raw map **on the model grid** (``s x s``, float32 in [0, 1]: the
array ``predict --explain`` saves as ``.npy``); the writer stretches it (bilinear, as the overlay
does) to the source image's ``Rows x Columns`` for the Parametric Map. Boxes are ``x, y, w, h`` in
the **source image's pixels** (top-left origin, ``box_space=original``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the Manufacturer of every object written, and of the SR's observer device
MANUFACTURER = "chestxai"


@dataclass(frozen=True)
class AlgorithmIdentification:
    """TID 4019: the algorithm that produced the findings (name, version, parameters)."""

    version: str  # chestxai version
    run_id: str  # the run directory's name
    epoch: int | None  # the checkpoint's epoch
    method: str  # the explanation method behind the heatmap and boxes (e.g. gradcam)
    name: str = "chestxai"

    def parameters(self) -> list[str]:
        """TID 4019 Algorithm Parameters, ``key=value`` strings."""
        epoch = "unknown" if self.epoch is None else str(self.epoch)
        return [f"run_id={self.run_id}", f"epoch={epoch}", f"explanation={self.method}"]

    def equipment(self) -> dict[str, str]:
        """General Equipment of the image objects written (map, presentation state): chestxai as the
        manufacturer, the run as model and serial number (64-character LO fields)."""
        return {
            "manufacturer": MANUFACTURER,
            "manufacturer_model_name": f"chestxai {self.run_id}"[:64],
            "software_versions": self.version,
            "device_serial_number": self.run_id[:64],
        }


@dataclass(frozen=True)
class DicomFindings:
    """One source image's results; the label order is the run's."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    thresholds: tuple[float, ...]  # the run's operating thresholds, one per label
    decisions: tuple[bool, ...]  # present (True) / absent by the operating threshold
    heatmap: np.ndarray  # float32 [0, 1] on the model grid (s x s); the writer resizes it
    explained_label: str  # the label the heatmap and boxes are for
    boxes: tuple[tuple[int, int, int, int], ...]  # x, y, w, h in the source image's pixels
    algorithm: AlgorithmIdentification

    def __post_init__(self) -> None:
        n = len(self.labels)
        if not (len(self.probabilities) == len(self.thresholds) == len(self.decisions) == n):
            raise ValueError(
                f"DicomFindings: {n} labels but {len(self.probabilities)} probabilities, "
                f"{len(self.thresholds)} thresholds, {len(self.decisions)} decisions"
            )
        if self.explained_label not in self.labels:
            raise ValueError(f"DicomFindings: explained label {self.explained_label!r} not in {self.labels}")
        heat = np.asarray(self.heatmap)
        if heat.ndim != 2 or not heat.size:
            raise ValueError(f"DicomFindings: heatmap must be a 2-D array, got shape {heat.shape}")


@dataclass(frozen=True)
class WrittenObjects:
    """The files one source gave (``pr`` only with a presentation state) and their UIDs."""

    source: Path | None
    sr: Path
    pmap: Path
    pr: Path | None
    sr_sop_instance_uid: str
    pmap_sop_instance_uid: str

    def as_dict(self) -> dict:
        """The ``predict_files`` result entry: ``{"source", "sr", "pmap", "pr"}`` (paths as str)."""
        return {
            "source": None if self.source is None else str(self.source),
            "sr": str(self.sr),
            "pmap": str(self.pmap),
            "pr": None if self.pr is None else str(self.pr),
        }

"""The explained label's heatmap as a float32 Parametric Map on the source image's grid.

The explainer's map (model grid, [0, 1]) is stretched bilinearly to the source's ``Rows x
Columns`` (the stretch the overlay PNG uses), so each map pixel lies on the source pixel it
describes. Real-world value mapping: identity over [0, 1], quantity DCM 130404 "Saliency", unit
UCUM ``1``; a window of [0, 1] for display. No palette: a Palette Color LUT in a Parametric Map is
allowed for integer pixel data only (highdicom enforces it), and the map is float32 so that it holds
the heatmap's values unquantised; viewers colour it with their own colormap (OHIF does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chestxai.dicomout import codes
from chestxai.dicomout.codes import concept
from chestxai.dicomout.findings import DicomFindings

PM_SERIES_NUMBER = 9902


def heatmap_on_source(heatmap: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The model-grid heatmap stretched to the source's ``rows x cols``, float32 in [0, 1]."""
    from chestxai.explain.overlay import resize_heatmap

    heat = resize_heatmap(np.asarray(heatmap, np.float32), (int(rows), int(cols)))
    return np.clip(np.asarray(heat, np.float32), 0.0, 1.0)


def _projection_map_class() -> type:
    """highdicom's ``ParametricMap`` with one fix for sources without a patient coordinate system.

    A CR/DX image has no Frame of Reference, so highdicom 0.28 indexes the map's frame by Frame
    Label (0020,9453) in the Dimension Index Sequence but, with a single real-world value mapping,
    leaves the frame's Dimension Index Values empty and no Frame Label, then refuses its own object
    ("Unexpected mismatch between dimension index values..."). The frame gets index 1 and a label
    before highdicom reads the indices back; nothing else changes."""
    import highdicom as hd
    from pydicom.datadict import tag_for_keyword

    frame_label = tag_for_keyword("FrameLabel")

    class ProjectionParametricMap(hd.pm.ParametricMap):
        def _build_luts(self) -> None:
            pointers = [int(d.DimensionIndexPointer) for d in self.get("DimensionIndexSequence", [])]
            if pointers == [frame_label]:
                for item in self.get("PerFrameFunctionalGroupsSequence", []):
                    content = item.FrameContentSequence[0]
                    if not content.get("DimensionIndexValues"):
                        content.DimensionIndexValues = 1
                        content.FrameLabel = "HEATMAP"
            super()._build_luts()

    return ProjectionParametricMap


def with_nominal_frame(source: Any) -> Any:
    """The source's header (no pixels) with a nominal patient frame when it has none.

    The Parametric Map IOD requires a Frame of Reference and plane position / orientation per
    frame, which a projection radiograph (CR/DX) does not have. The map then gets a frame of its
    own: a Frame of Reference UID derived from the source's SOP Instance UID (every map of one
    source shares it), position ``0\\0\\0``, orientation ``1\\0\\0\\0\\1\\0`` and the source's pixel
    spacing (Pixel Spacing, else Imager Pixel Spacing, else 1 mm). It places the map on no real
    patient coordinates: the map lies on the source pixel for pixel (same Rows x Columns, Derivation
    Image Sequence with Spatial Locations Preserved YES). The source itself is never changed; this
    copy only feeds highdicom."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    if "FrameOfReferenceUID" in source:
        return source
    header = Dataset()
    for elem in source:
        if elem.keyword not in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            header.add(elem)
    if hasattr(source, "file_meta"):
        header.file_meta = source.file_meta
    header.FrameOfReferenceUID = generate_uid(entropy_srcs=[str(source.SOPInstanceUID), "chestxai frame"])
    header.PositionReferenceIndicator = ""
    header.ImagePositionPatient = [0.0, 0.0, 0.0]
    header.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing") or [1.0, 1.0]
    header.PixelSpacing = [float(v) for v in spacing]
    header.SliceThickness = 1.0
    return header


def build_pmap(source: Any, findings: DicomFindings, series_uid: str, sop_uid: str) -> Any:
    import highdicom as hd

    a = findings.algorithm
    heat = heatmap_on_source(findings.heatmap, int(source.Rows), int(source.Columns))
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="SALIENCY",
        lut_explanation=f"{a.method} heatmap of {findings.explained_label}"[:64],
        unit=concept(codes.NO_UNITS),
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
        quantity_definition=concept(codes.SALIENCY),
    )
    pmap = _projection_map_class()(
        source_images=[with_nominal_frame(source)],
        pixel_array=heat[None],
        series_instance_uid=series_uid,
        series_number=PM_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer="chestxai",
        manufacturer_model_name=f"chestxai {a.run_id}"[:64],
        software_versions=a.version,
        device_serial_number=a.run_id[:64],
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label="HEATMAP",
        content_description=f"{a.method} heatmap of {findings.explained_label}"[:64],
        series_description=f"chestxai heatmap ({a.run_id})"[:64],
    )
    add_frame_anatomy(pmap)
    return pmap


def add_frame_anatomy(pmap: Any) -> None:
    """Frame Anatomy (shared): the chest, unpaired (Frame Laterality ``U``); it is what makes the
    General Series' Laterality unnecessary, and a chest radiograph is what every model reads."""
    from pydicom.dataset import Dataset

    region = concept(codes.CHEST)
    item = Dataset()
    item.AnatomicRegionSequence = [region]
    item.FrameLaterality = "U"
    pmap.SharedFunctionalGroupsSequence[0].FrameAnatomySequence = [item]

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


def with_nominal_frame(source: Any) -> Any:
    """The source's header (no pixels) with a nominal patient frame when it has no plane geometry.

        The Parametric Map IOD requires a Frame of Reference and plane position / orientation per
        frame, which a projection radiograph (CR/DX) does not have (a source with a Frame of Reference but
    no Image Position / Orientation has none usable either). The map then gets a frame of its
        own: a Frame of Reference UID derived from the source's SOP Instance UID (every map of one
        source shares it), position ``0\\0\\0``, orientation ``1\\0\\0\\0\\1\\0`` and the source's pixel
        spacing (Pixel Spacing, else Imager Pixel Spacing, else 1 mm). It places the map on no real
        patient coordinates: the map lies on the source pixel for pixel (same Rows x Columns, Derivation
        Image Sequence with Spatial Locations Preserved YES). The source itself is never changed; this
        copy only feeds highdicom."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    if all(k in source for k in ("FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient")):
        return source  # a source with its own plane geometry: the map shares its frame
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
    pmap = hd.pm.ParametricMap(
        source_images=[with_nominal_frame(source)],
        pixel_array=heat[None],
        series_instance_uid=series_uid,
        series_number=PM_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        **a.equipment(),
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

"""An optional Grayscale Softcopy Presentation State drawing the heatmap boxes on the source.

A viewer that applies it shows the source with the explained label's boxes as closed polylines
(PIXEL units, the SR's corner convention) in one graphic layer and the label's name and
probability as text above each box; the source's own window (if any) is kept, else the full range.
"""

from __future__ import annotations

from typing import Any

from chestxai.dicomout.findings import DicomFindings
from chestxai.dicomout.sr import box_polyline

PR_SERIES_NUMBER = 9903


def build_pr(source: Any, findings: DicomFindings, series_uid: str, sop_uid: str) -> Any:
    import highdicom as hd

    a = findings.algorithm
    label = findings.explained_label
    p = findings.probabilities[findings.labels.index(label)]
    layer = hd.pr.GraphicLayer(
        layer_name="CHESTXAI", order=1, description=f"{a.method} boxes of {label}"[:64]
    )
    graphics = [
        hd.pr.GraphicObject(
            graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
            graphic_data=box_polyline(box),
            units=hd.pr.AnnotationUnitsValues.PIXEL,
        )
        for box in findings.boxes
    ]
    texts = [
        hd.pr.TextObject(
            text_value=f"{label} p={p:.2f}"[:64],
            units=hd.pr.AnnotationUnitsValues.PIXEL,
            anchor_point=(float(x), float(max(y, 0))),
            anchor_point_visible=False,
        )
        for x, y, _, _ in findings.boxes
    ]
    annotations = []
    if graphics:
        annotations.append(
            hd.pr.GraphicAnnotation(
                referenced_images=[source], graphic_layer=layer, graphic_objects=graphics, text_objects=texts
            )
        )
    pr = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[source],
        series_instance_uid=series_uid,
        series_number=PR_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        **a.equipment(),
        content_label="CHESTXAI",
        content_description=f"{a.method} boxes of {label}"[:64],
        graphic_annotations=annotations or None,
        graphic_layers=[layer],
        series_description=f"chestxai boxes ({a.run_id})"[:64],
    )
    # the body part says whether General Series' Laterality is needed: a chest is unpaired
    pr.BodyPartExamined = str(source.get("BodyPartExamined") or "CHEST")
    return pr

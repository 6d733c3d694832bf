"""Published figures the scorecard prints beside chestxai's own, each with its source and protocol.

Every figure here was looked up in the publication (or the authors' repository) named in its
``citation``; a figure that could not be checked is left out rather than recalled, and
:data:`LEFT_OUT` says which. They follow OTHER protocols, models, image sizes and ground truth
than a chestxai run, so they place our numbers in the field's range; they are never a
like-for-like comparison, and every table that shows them says so.

* :data:`CHESTXRAY8` - Wang et al., CVPR 2017, Table 4: localisation accuracy per finding at
  T(IoBB) in {0.1, 0.25, 0.5, 0.75, 0.9} (ResNet-50 heatmaps, boxes from the heatmap).
* :data:`PYLON` - Preechakul et al.: average point-localisation accuracy on the NIH boxes,
  PYLON 0.62 vs a traditional CAM model 0.45.
* :data:`CHEXLOCALIZE_GRADCAM_VAL` - Saporta et al. 2022: DenseNet121 + Grad-CAM validation
  mIoU per pathology (their repository's tuning results).
* :data:`ARUN` - Arun et al. 2021: AUPRC of saliency maps against masks/boxes vs localisation
  networks, and how many of 8 methods failed the model-randomisation test.

:func:`chestxray8_table` lays our IoBB accuracy out as Table 4, with the published row beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chestxai.labels import spelling_in


@dataclass(frozen=True)
class Anchor:
    """A published set of figures: ``values`` with the ``citation`` and the ``protocol`` they
    follow, and ``finding``: the paper's own conclusion in one sentence, where it has one."""

    name: str
    citation: str
    protocol: str
    values: Mapping = field(default_factory=dict)
    finding: str = ""


IOBB_THRESHOLDS = ("0.1", "0.25", "0.5", "0.75", "0.9")
CHESTXRAY8_FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
)  # fmt: skip

# Table 4, "Acc." rows (the AFP rows are not reproduced); columns in the table's order
_TABLE4 = {
    "0.1": (0.7277, 0.9931, 0.7124, 0.7886, 0.4352, 0.1645, 0.7500, 0.4591),
    "0.25": (0.5500, 0.9794, 0.5424, 0.5772, 0.2823, 0.0506, 0.5583, 0.3469),
    "0.5": (0.2833, 0.8767, 0.3333, 0.4227, 0.1411, 0.0126, 0.3833, 0.1836),
    "0.75": (0.1666, 0.7260, 0.2418, 0.3252, 0.1176, 0.0126, 0.2583, 0.1020),
    "0.9": (0.1333, 0.6849, 0.2091, 0.2520, 0.0588, 0.0126, 0.2416, 0.0816),
}

CHESTXRAY8 = Anchor(
    name="ChestX-ray8",
    citation=(
        "Wang et al., ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on "
        "Weakly-Supervised Classification and Localization of Common Thorax Diseases, CVPR 2017, "
        "Table 4 (arXiv:1705.02315)"
    ),
    protocol=(
        "ResNet-50 trained on image labels; heatmap from the transition layer and the prediction "
        "weights at 32x32 for 1024x1024 images; boxes generated from the thresholded heatmap; a "
        "finding is localised when IoBB (intersection over the detected box's area) > T(IoBB); "
        "accuracy over the paper's hand-annotated boxes of each finding (about 1,600 instances "
        "in the paper; the public BBox_List_2017.csv holds 984)"
    ),
    values={t: dict(zip(CHESTXRAY8_FINDINGS, row, strict=True)) for t, row in _TABLE4.items()},
)

PYLON = Anchor(
    name="PYLON",
    citation=(
        "Preechakul et al., High resolution weakly supervised localization architectures for "
        "medical images, arXiv:2010.11475 (abstract); published as Improved image classification "
        "explainability with high-accuracy heatmaps, iScience 25:103933, 2022"
    ),
    protocol=(
        "point localisation (the map's maximum inside a ground-truth NIH box), averaged over the "
        "8 boxed findings of NIH ChestX-ray14; PYLON's high-resolution CAM vs a traditional CAM model"
    ),
    values={"pylon": 0.62, "cam": 0.45},
)

# sample/probability_tuning_results.csv of github.com/rajpurkarlab/cheXlocalize (commit 2a79492):
# per pathology, the validation mIoU at the probability cutoff that maximises it
CHEXLOCALIZE_GRADCAM_VAL = Anchor(
    name="CheXlocalize Grad-CAM (val)",
    citation=(
        "Saporta et al., Benchmarking saliency methods for chest X-ray interpretation, Nature "
        "Machine Intelligence 4:867-878, 2022; github.com/rajpurkarlab/cheXlocalize "
        "sample/probability_tuning_results.csv"
    ),
    protocol=(
        "DenseNet121 + Grad-CAM on CheXpert validation images (234 CXRs) against radiologists' "
        "segmentations; map min-max normalised, resized to the image (bilinear), binarised by "
        "Otsu, emptied below the per-pathology probability cutoff tuned on val for maximum mIoU; "
        "IoU per CXR x pathology (positives and negatives), averaged"
    ),
    values={
        "Airspace Opacity": 0.204,
        "Atelectasis": 0.134,
        "Cardiomegaly": 0.223,
        "Consolidation": 0.211,
        "Edema": 0.233,
        "Enlarged Cardiomediastinum": 0.191,
        "Lung Lesion": 0.000,
        "Pleural Effusion": 0.133,
        "Pneumothorax": 0.125,
        "Support Devices": 0.167,
    },  # fmt: skip
    finding=(
        "all seven saliency methods localised significantly worse than the radiologists' human "
        "benchmark (Otsu); with thresholds tuned on val, Grad-CAM beat the benchmark on 2 "
        "pathologies, trailed it on 5 and did not differ significantly on 3 (Extended Data Fig. 1)"
    ),
)

ARUN = Anchor(
    name="Arun et al.",
    citation=(
        "Arun et al., Assessing the trustworthiness of saliency maps for localizing abnormalities "
        "in medical imaging, Radiology: Artificial Intelligence 2021 (medRxiv "
        "10.1101/2020.07.28.20163899, abstract)"
    ),
    protocol=(
        "AUPRC of the map's pixels against the ground truth; 8 saliency methods on classifiers "
        "vs a localisation network trained with the masks/boxes; randomisation judged by SSIM "
        "against the mean SSIM of random pairs of the trained model's maps"
    ),
    values={
        "siim_pneumothorax_segmentation": {"saliency_auprc": (0.024, 0.224), "unet_auprc": 0.404},
        "rsna_pneumonia_detection": {"saliency_auprc": (0.160, 0.519), "retinanet_auprc": 0.596},
        "randomization_failed": {
            "siim_pneumothorax_segmentation": "5 of 8",
            "rsna_pneumonia_detection": "2 of 8",
        },
    },
    finding=(
        "all eight saliency methods failed at least one of the four criteria and localised worse "
        "than localisation networks"
    ),
)

ANCHORS = (CHESTXRAY8, PYLON, CHEXLOCALIZE_GRADCAM_VAL, ARUN)

LEFT_OUT = (
    "CheXlocalize's human-benchmark mIoU and hit rate per pathology (in the paper's figures, not "
    "checked here); PYLON's per-finding point-localisation accuracy (the repository's README "
    "gives reruns it says differ from the paper); ChestX-ray8's average false positives (AFP rows)"
)

OTHER_PROTOCOLS = (
    "Published figures follow other protocols, models, image sizes and box sets; they place "
    "ours in the field's range and are not a like-for-like comparison."
)


def _fmt(ci: Mapping | None) -> str:
    if not ci or ci.get("value") is None:
        return "n/a"
    text = f"{ci['value']:.2f}"
    if ci.get("ci_low") is not None and ci.get("ci_high") is not None:
        text += f" [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"
    return text


def chestxray8_table(per_finding: Mapping[str, Mapping], thresholds: Sequence[str] = IOBB_THRESHOLDS) -> str:
    """Our IoBB accuracy per finding in ChestX-ray8's Table 4 layout, the published row beside it.

    ``per_finding``: a localisation block's ``per_finding`` (``{finding: {"iobb_accuracy":
    {"0.1": {value, ci_low, ci_high}, ...}, "n_positive": int, ...}}``). Rows are T(IoBB),
    each with our accuracy (95% CI) and ChestX-ray8's; columns are Table 4's eight findings
    (our names matched through :data:`chestxai.labels.SYNONYMS`: ``Pleural Effusion`` is its
    ``Effusion``), then our findings it does not have. A Markdown table, with the protocols
    stated under it."""
    ours = {}
    for name, block in per_finding.items():
        ours[spelling_in(name, CHESTXRAY8_FINDINGS) or name] = block
    columns = list(CHESTXRAY8_FINDINGS) + sorted(set(ours) - set(CHESTXRAY8_FINDINGS))
    lines = [
        "| T(IoBB) | | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
        "| n (ours) | | "
        + " | ".join(str(ours[c].get("n_positive", "n/a")) if c in ours else "-" for c in columns)
        + " |",
    ]
    for t in thresholds:
        key = f"{float(t):g}"
        published = CHESTXRAY8.values.get(key, {})
        mine = [_fmt((ours[c].get("iobb_accuracy") or {}).get(key)) if c in ours else "-" for c in columns]
        theirs = [f"{published[c]:.2f}" if c in published else "-" for c in columns]
        lines.append(f"| {key} | chestxai | " + " | ".join(mine) + " |")
        lines.append(f"| {key} | ChestX-ray8 * | " + " | ".join(theirs) + " |")
    hits = [_fmt(ours[c].get("hit_rate")) if c in ours else "-" for c in columns]
    lines.append("| point | chestxai hit rate | " + " | ".join(hits) + " |")
    lines += [
        "",
        f"\\* {CHESTXRAY8.citation}: {CHESTXRAY8.protocol}. Point localisation on NIH's boxes: "
        f"PYLON {PYLON.values['pylon']:.2f} vs CAM {PYLON.values['cam']:.2f} ({PYLON.citation}). "
        f"{OTHER_PROTOCOLS}",
    ]
    return "\n".join(lines)

"""The report's *Subgroups* section: what ``evaluate --by`` wrote under ``subgroups`` in
``metrics.json`` (for whom does the model fail), with the per-group ROC-AUC figure.

Tables per attribute: per finding, each group's ROC-AUC, sensitivity and FPR with intervals
("too few" where the group was not scored), the largest AUROC gap and whether its interval
excludes 0; then the underdiagnosis rate per group. The rules (too-few threshold, the definition
of underdiagnosis, the gap) are printed beside the tables, from the entry itself.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from chestxai.report.html import figure, paragraph, table
from chestxai.report.sections import fmt_ci

SHOWN = (("roc_auc", "ROC-AUC"), ("sensitivity", "sensitivity"), ("fpr", "FPR"), ("ece", "ECE"))


def flagged_gaps(s: dict) -> list[str]:
    """``attribute/finding metric higher-lower value`` for every flagged largest gap (all metrics)."""
    out = []
    for attr, a in s["attributes"].items():
        for finding, f in a["findings"].items():
            for metric, gap in f["largest_gap"].items():
                if gap and gap["flagged"]:
                    out.append(f"{attr}/{finding} {metric} {gap['higher']} - {gap['lower']} {fmt_ci(gap)}")
        under = a.get("underdiagnosis") or {}
        gap = under.get("largest_gap")
        if gap and gap["flagged"]:
            out.append(f"{attr} underdiagnosis {gap['higher']} - {gap['lower']} {fmt_ci(gap)}")
    return out


def has_subgroups(metrics: dict | None) -> bool:
    return bool(metrics and metrics.get("subgroups"))


def _gap(gap: dict | None) -> str:
    if not gap:
        return "n/a (fewer than 2 scored groups)"
    text = f"{gap['higher']} - {gap['lower']}: " + fmt_ci(gap)
    return text + (" FLAGGED" if gap["flagged"] else "")


def attribute_tables(attr: str, a: dict) -> str:
    groups = list(a["groups"])
    sizes = ", ".join(
        f"{g}: {v['n_images']} images, {v['n_patients']} patients" for g, v in a["groups"].items()
    )
    out = paragraph(f"By {attr}: {sizes}; {a['n_missing']} images with no recorded {attr} (not a group).")
    header = ["finding", "group", "n", "positives", *(t for _, t in SHOWN)]
    rows = []
    for finding, f in a["findings"].items():
        for g in groups:
            e = f["groups"][g]
            scored = e["status"] == "scored"
            rows.append(
                [finding, g, e["n"], e["n_pos"], *(fmt_ci(e[m]) if scored else "too few" for m, _ in SHOWN)]
            )
        rows.append([finding, "largest AUROC gap", "", "", _gap(f["largest_gap"]["roc_auc"]), "", "", ""])
    out += table(header, rows, f"Per {attr} group and finding [95% CI]")
    under = a.get("underdiagnosis")
    if under:
        urows = [
            [g, u["n_diseased"], fmt_ci(u) if u["status"] == "scored" else "too few"]
            for g, u in under["groups"].items()
        ]
        urows.append(["largest gap", "", _gap(under["largest_gap"])])
        out += table(["group", "diseased images", "underdiagnosis rate"], urows, f"Underdiagnosis by {attr}")
    return out


def subgroups_section(metrics: dict) -> str:
    """HTML of the section (call only when :func:`has_subgroups`)."""
    from chestxai.metrics.subgroup_plots import plot_subgroup_auroc

    s = metrics["subgroups"]
    boot = s["bootstrap"]
    out = paragraph(
        f"Split {metrics.get('split')}, groups by {', '.join(s['by'])}. "
        f"{s['too_few_rule']}. Underdiagnosis: {s['underdiagnosis_definition']}. "
        f"{s['gap_rule']}. Intervals: {int(100 * boot['level'])}% percentile bootstrap, {boot['n_boot']} "
        f"replicates resampling {boot['unit']}s, the same replicates for every group (paired)."
    )
    if "age_bins" in s:
        out += paragraph(f"Age bins (years, [lo, hi)): {', '.join(s['age_bins']['names'])}.")
    flagged = flagged_gaps(s)
    if flagged:
        out += paragraph(
            "Gaps whose interval excludes 0: " + ", ".join(flagged) + ". The pair is chosen on the "
            "data (highest vs lowest group), so read this as a screen for where to look, not a test.",
            "warning",
        )
    with tempfile.TemporaryDirectory() as tmp:  # the report embeds the image; the run keeps no copy
        path = plot_subgroup_auroc(s, Path(tmp) / "subgroups_auroc.png")
        out += figure(path, "ROC-AUC per group and finding [95% CI]; groups with too few cases are not drawn")
    for attr, a in s["attributes"].items():
        out += attribute_tables(attr, a)
    return out

"""The "Site shift" section: internal vs external AUROC per shared finding and the site probe,
from ``site_shift`` / ``site_probe`` in ``metrics.json`` (``evaluate --data OTHER [--site-probe]``)."""

from __future__ import annotations

from chestxai.report.html import esc, paragraph, table

PROBE_NOTE = (
    "A linear probe (logistic regression on the model's pooled features, patient-grouped folds) "
    "predicting the {what}. An AUROC at or above {warn} means the features encode the {what}: the "
    "model may score the site instead of the finding (Zech et al. 2018; DeGrave et al. 2021). A low "
    "AUROC is no proof of the opposite: the probe is linear and sees only the pooled vector."
)


def has_site_entries(metrics: dict | None) -> bool:
    return bool(metrics) and ("site_shift" in metrics or "site_probe" in metrics)


def _auc(entry: dict) -> str:
    v = entry.get("roc_auc") or {}
    if v.get("value") is None:
        return "n/a"
    lo, hi = v.get("ci") or (None, None)
    return f"{v['value']:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{v['value']:.3f}"


def site_shift_section(metrics: dict | None) -> str:
    """HTML for ``site_shift`` and ``site_probe`` (a note when neither is present)."""
    if not has_site_entries(metrics):
        return paragraph("No site comparison: run `chestxai evaluate RUN --data OTHER_CACHE --out DIR`.")
    parts = []
    shift = metrics.get("site_shift")
    if shift is not None:
        from chestxai.metrics.significance import format_p

        unit = shift["bootstrap"]["unit"]
        units = f"{unit['internal']}s (internal) and {unit['external']}s (external)"
        rows = []
        for name, e in shift["findings"].items():
            d = e["difference"]
            diff = (
                "n/a" if d["value"] is None else f"{d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
            )
            rows.append([
                name + (" (small n)" if e["small_n"] else ""),
                ", ".join(e["data_labels"]) + f" ({e['how']})",
                _auc(e["internal"]),
                f"{e['internal']['n_pos']}/{e['internal']['n_neg']}",
                _auc(e["external"]),
                f"{e['external']['n_pos']}/{e['external']['n_neg']}",
                diff,
                "n/a" if e["delong_p"] is None else format_p(e["delong_p"]),
            ])  # fmt: skip
        parts.append(
            paragraph(
                f"Internal: the run's {shift['internal']['split']} split ({shift['internal']['n_images']} images, "
                f"{shift['internal']['n_patients']} patients). External: {shift['external']['cache']} "
                f"({shift['external']['n_images']} images, {shift['external']['n_patients']} patients). "
                f"95% CIs resample {units}; difference: {shift['difference_note']}. {shift['test']}."
            )
        )
        if rows:
            parts.append(
                table(
                    [
                        "finding",
                        "external label(s)",
                        "internal AUROC",
                        "n+/n- int",
                        "external AUROC",
                        "n+/n- ext",
                        "difference",
                        "p (DeLong)",
                    ],
                    rows,
                    caption="Internal vs external AUROC per shared finding",
                )  # fmt: skip
            )
        else:
            parts.append(paragraph("No finding of the run meets the external labels by name."))
        labels = shift["labels"]
        if labels["run_only"]:
            parts.append(paragraph(f"Not in the external data: {', '.join(labels['run_only'])}."))
        if labels["data_only"]:
            parts.append(
                paragraph(f"External labels the run does not predict: {', '.join(labels['data_only'])}.")
            )
        parts.extend(paragraph(n) for n in labels["notes"])
    probe = metrics.get("site_probe")
    if probe is not None:
        what = probe["probe"]
        parts.append(paragraph(PROBE_NOTE.format(what=what, warn=probe["warn_at"])))
        parts.append(
            table(
                ["probe", "classes", "AUROC [95% CI]", "n (per class)", "patients", "folds"],
                [
                    [
                        what,
                        " vs ".join(probe["classes"]),
                        _auc(probe),
                        f"{probe['n']} ({'/'.join(map(str, probe['n_per_class']))})",
                        probe["n_patients"],
                        probe["folds"],
                    ]
                ],
            )  # fmt: skip
        )
        if probe.get("warning"):
            parts.append(f'<p class="warning"><strong>Warning:</strong> {esc(probe["warning"])}</p>')
    return "".join(parts)

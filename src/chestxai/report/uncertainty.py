"""The report's *Uncertainty* section: what ``chestxai uncertainty`` found, per method.

Read from ``RUN/uncertainty/<method>/uncertainty.json`` and its figures/heatmaps (names from
:class:`chestxai.rundir.UncertaintyDir`): retained ROC-AUC as the most uncertain cases are
referred beside the random, confidence, softmax and oracle baselines, AURC/AUGRC, the referral needed for
a target sensitivity/specificity, calibration of the averaged probabilities, the figures, and the
two lists a radiologist should see: the most uncertain cases and the confident errors.
"""

from __future__ import annotations

from chestxai.report.html import esc, figure, paragraph, table
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import read_json
from chestxai.uncertainty.conformal import HELD, MISSED, guarantee_missed
from chestxai.uncertainty.figures import FIGURES
from chestxai.uncertainty.methods import list_methods

SHOWN_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5)
KIND_TITLE = {
    "most_uncertain": "Most uncertain cases (refer these to a radiologist)",
    "confident_error": "Confident errors (what referral by uncertainty would miss)",
}


def methods_with_results(run: RunDir) -> list[str]:
    return [m for m in list_methods() if run.uncertainty_dir(m).summary.is_file()]


def has_uncertainty(run: RunDir) -> bool:
    return bool(methods_with_results(run)) or run.conformal.summary.is_file()


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _cell(row: dict) -> str:
    lo, hi = row["ci"]["roc_auc"]
    ci = f" [{_num(lo)}, {_num(hi)}]" if lo is not None and hi is not None else ""
    return f"{_num(row['roc_auc'])}{ci}"


def referral_table(summary: dict) -> str:
    fractions = [
        f
        for f in SHOWN_FRACTIONS
        if any(r["fraction"] == f for r in next(iter(summary["referral"].values())))
    ]
    header = ["ranking", *[f"{f:.0%} referred" for f in fractions], "AURC", "AUGRC"]
    rows = []
    for name, curve in summary["referral"].items():
        by_f = {r["fraction"]: r for r in curve}
        rows.append(
            [name, *[_cell(by_f[f]) for f in fractions], _num(summary["aurc"].get(name), 4),
             _num(summary["augrc"].get(name), 4)]
        )  # fmt: skip
    return table(header, rows, caption="ROC-AUC of the retained cases [95% CI, patient bootstrap]")


def verdict(summary: dict) -> str:
    """One plain sentence: does the method's best measure beat the best plain baseline (the
    softmax baseline or referral by confidence, Bernhardt et al. 2022) at 20% referred?"""
    at = 0.2
    ref = summary["referral"]

    def auc(name: str):
        return next((r["roc_auc"] for r in ref.get(name, []) if r["fraction"] == at), None)

    plain = {b: auc(b) for b in ("softmax", "confidence") if auc(b) is not None}
    scored = {m: auc(m) for m in summary["rankings"]["method"] if auc(m) is not None}
    if not plain or not scored:
        return "Not enough data to compare the rankings."
    base = max(plain, key=plain.get)
    conf = plain[base]
    what = "the softmax baseline" if base == "softmax" else "referral by confidence"
    best = max(scored, key=scored.get)
    if scored[best] > conf:
        return (
            f"At {at:.0%} referred, {summary['method']} {best} keeps ROC-AUC {scored[best]:.3f} against "
            f"{conf:.3f} for {what}, the better plain baseline (see the CIs before trusting the difference)."
        )
    return (
        f"At {at:.0%} referred, no {summary['method']} measure beats {what} "
        f"({conf:.3f}; best {best} {scored[best]:.3f})."
    )


def target_table(summary: dict) -> str:
    rows = []
    for name, t in summary.get("target_referral", {}).items():
        if t.get("reached_on_val"):
            test = t["test"]
            rows.append([name, f"{t['val_fraction']:.0%}", f"{t['test_fraction']:.0%}",
                         _num(test["sensitivity"]), _num(test["specificity"])])  # fmt: skip
        else:
            rows.append([name, f"not reached within {t.get('max_fraction', 0.5):.0%}", "", "", ""])
    if not rows:
        return paragraph("No validation split: the referral needed for a target was not computed.", "note")
    target = next(iter(summary["target_referral"].values()))["target"]
    caption = (
        f"Share to refer for sensitivity >= {target['sensitivity']} and specificity >= {target['specificity']} "
        f"(chosen on val, applied to {summary['split']})"
    )
    return table(
        ["ranking", "referred (val)", "referred (test)", "sensitivity", "specificity"], rows, caption
    )


def calibration_table(summary: dict) -> str:
    cal = summary["calibration"]
    rows = [
        [label, _num(cal[key]["ece"]), _num(cal[key]["nll"]), _num(cal[key]["brier"])]
        for key, label in (
            ("mean", f"{summary['method']} mean"),
            ("deterministic", "single deterministic model"),
        )
    ]
    caption = f"Calibration (ECE over {cal['n_bins']} {cal['bins']} bins)"
    return table(["probabilities", "ECE", "NLL", "Brier"], rows, caption)


def gallery(summary: dict, out) -> str:
    parts = []
    for kind, title in KIND_TITLE.items():
        cases = [c for c in summary.get("gallery", []) if c["kind"] == kind]
        if not cases:
            parts.append(f"<h4>{esc(title)}</h4>" + paragraph("none", "note"))
            continue
        figs = []
        for c in cases:
            caption = (
                f"{c['image_id']} {c['label']}: p={c['p_mean']:.2f} ± {c['std']:.3f}, target "
                f"{_num(c['target'], 0)}; image | mean Grad-CAM | std (max {c.get('std_max', 0):.2f})"
            )
            path = out.root / c["heatmap"] if c.get("heatmap") else None
            figs.append(figure(path, caption) if path is not None and path.is_file() else paragraph(caption))
        parts.append(f'<h4>{esc(title)}</h4><div class="gallery">{"".join(figs)}</div>')
    return "".join(parts)


def method_head(s: dict, method: str) -> list[str]:
    """What was run on which images (patients only when ids group them), and why its ROC-AUC is not
    the one ``chestxai evaluate`` printed: it is that of the probabilities averaged over the passes."""
    grouped = (s.get("bootstrap") or {}).get("unit") == "patient"
    who = f"{s['n_patients']} patients" if grouped else "no patient ids: intervals resample images"
    what = "members" if method == "ensemble" else "passes"
    notes = [
        paragraph(
            f"{method}: {s['passes']} {what} on {s['n_images']} {s['split']} images ({who}); {s['batching']}."
        )
    ]
    aucs = s.get("roc_auc")
    if aucs:
        notes.append(paragraph(
            f"ROC-AUC here (macro, 0% referred) is that of the probabilities averaged over the {method} {what}: "
            f"{_num(aucs.get('mean_probs'))}; the same model on the plain inputs, which `chestxai evaluate` "
            f"reports, scores {_num(aucs.get('deterministic'))}. Averaging over perturbed inputs changes the "
            "scores, so the two differ.",
            "note",
        ))  # fmt: skip
    return notes


def method_block(run: RunDir, method: str) -> str:
    out = run.uncertainty_dir(method)
    s = read_json(out.summary)
    notes = method_head(s, method)
    if s.get("dropout"):
        notes.append(
            paragraph(f"Dropout: {s['dropout']}.", "warning" if "inference" in s["dropout"] else None)
        )
    notes.append(paragraph(verdict(s)))
    figs = [
        figure(out.root / s["figures"][name], caption)
        for name, caption in FIGURES.items()
        if name in s.get("figures", {}) and (out.root / s["figures"][name]).is_file()
    ]
    body = "".join(notes) + referral_table(s) + target_table(s) + calibration_table(s)
    body += f'<div class="figures">{"".join(figs)}</div>' + gallery(s, out)
    return f"<h3>{esc(method)}</h3>{body}"


def uncertainty_section(run: RunDir) -> str:
    intro = paragraph(
        "Referral: the most uncertain share of cases goes to a radiologist and the rest is scored. "
        "Baselines on the same probabilities: random order, the deterministic model's confidence "
        "(distance from the threshold), the softmax baseline (1 - max p, or the distance of p from 0.5; "
        "Bernhardt et al. 2022 found no score that consistently beats it) and the oracle (errors first).",
        "note",
    )
    body = intro + "".join(method_block(run, m) for m in methods_with_results(run))
    return body + (conformal_block(run) if run.conformal.summary.is_file() else "")


def _rate(r: dict | None) -> str:
    if not r or r.get("value") is None:
        return "n/a"
    lo, hi = r["ci"]
    return f"{r['value']:.3f} [{_num(lo)}, {_num(hi)}] (n={r['n']})"


def conformal_block(run: RunDir) -> str:
    """``uncertainty --conformal``: the guarantee, the assumption it rests on, what test shows."""
    s = read_json(run.conformal.summary)
    c = s["conformal"]
    test, val = c["test"], c["val"]
    rows = [["method", f"{c['method']} ({c['task']}), alpha {c['alpha']}"], ["guarantee", c["guarantee"]]]
    rows.append(["thresholds", ", ".join(f"{k} {v}" for k, v in c["thresholds"].items() if k != "bins")])
    if c["method"] == "crc":
        rows.append(["FNR on test [95% CI]", _rate(c["fnr"])])
        rows.append(["FNR on val (calibration split)", _num(val["fnr"]["value"])])
    else:
        rows.append(["coverage on test [95% CI]", _rate(c["coverage"])])
        rows.append(["coverage on val (calibration split)", _num(val["coverage"]["value"])])
        names = c["label_names"] if c["method"] != "triage" else ["negative class", "positive class"]
        for name, r in zip(names, test["coverage_by_class"], strict=False):
            rows.append([f"coverage of {name} on test", _rate(r)])
        if "triage" in test:
            for key in ("fnr", "fpr", "npv", "ppv", "share_referred"):
                rows.append(
                    [
                        f"{key.upper() if key != 'share_referred' else 'referred'} on test",
                        _rate(test["triage"][key]),
                    ]
                )
    rows.append(["mean set size on test", _num(c["mean_set_size"], 2)])
    missed = guarantee_missed(c)
    kind = "warning" if missed else "note"
    verdict = (MISSED if missed else HELD).capitalize() + "."
    head = paragraph(f"Assumption: {c['assumption']} {verdict}", kind)
    ref = referral_table(s) if s.get("referral") else ""
    return f"<h3>Conformal guarantee</h3>{head}{table(['', 'value'], rows)}{ref}"

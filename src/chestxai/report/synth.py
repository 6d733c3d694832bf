"""``RUN/report.html`` of a synthesis run: realism and faithfulness, from ``synth_metrics.json``.

What a reader needs, in order: can a classifier tell the translations from real images (the
two-sample test, with its CI and p-value, and FID/KID with the extractor named), do the
translations carry the target label for a classifier trained on real images (against the same
share on real images), and did the anatomy survive (cycle SSIM, and the gallery of input /
translated / reconstructed with pixel and Grad-CAM differences). What could not be computed is
said, with the reason, instead of left blank. Self-contained: every image is embedded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chestxai.atomic import write_text
from chestxai.metrics.significance import format_p
from chestxai.report.html import GENERATOR, esc, figure, page, paragraph, table
from chestxai.rundir import SynthRunDir
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import read_json

KIND_CAPTION = {
    "input": "input",
    "translated": "translated",
    "reconstructed": "reconstructed (cycle)",
    "difference": "|translated - input|",
    "gradcam": "Grad-CAM(translated) - Grad-CAM(input)",
}


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def two_sample_verdict(direction: str, r: dict, source: str, target: str) -> str:
    """One plain sentence per direction: easy to detect, or not distinguishable by this test."""
    acc, (lo, hi) = r["accuracy"], r["ci"]
    head = (
        f"{direction} ({source} -> {target}): a small CNN separates real {target} images from translated ones "
        f"with held-out accuracy {acc:.3f} [{lo:.3f}, {hi:.3f}] on {r['n_test']} images (p {format_p(r['p_value'])} vs 0.5)"
    )
    if r["p_value"] < 0.05:
        tail = "the translations are easy to detect."
    else:
        tail = (
            "this test cannot tell them from real images (which is not proof of realism: a weak test or few "
            "images also give 0.5)."
        )
    return f"{head}: {tail}"


def _summary(m: dict) -> str:
    body = paragraph(
        f"CycleGAN {m['domains']['a']} <-> {m['domains']['b']} at {m['size']} px, checkpoint epoch {m['epoch']}; "
        f"measured on the {m['split']} split (images training never saw), seed {m['seed']}."
    )
    for d, r in m["two_sample"].items():
        s = m["samples"][d]
        body += paragraph(two_sample_verdict(d, r, s["source"], s["target"]))
    lc = m.get("label_consistency") or {}
    for d, r in lc.items():
        if r.get("share") is None:
            continue
        body += paragraph(
            f"{d}: the classifier puts {r['share']:.0%} of the translations in {r['target']} ({r['rule']}), "
            f"against {_f(r['real_target_share'], 2)} of real {r['target']} images and {_f(r['input_share'], 2)} of "
            f"the inputs before translation."
        )
    return body


def _ref(ts: dict) -> str:
    ref = ts.get("real_vs_real")
    if not ref:
        return "n/a"
    return f"{ref['accuracy']:.3f} [{ref['ci'][0]:.3f}, {ref['ci'][1]:.3f}] (p {format_p(ref['p_value'])}, n {ref['n_test']})"


def realism_table(m: dict) -> str:
    """Two tables (realism, faithfulness) so that neither scrolls sideways; then counts and gaps."""
    realism, faithful = [], []
    for d in m["directions"]:
        s, ts, ssim = m["samples"][d], m["two_sample"][d], m["cycle_ssim"][d]
        fid = (m.get("fid") or {}).get(d)
        kid = (m.get("kid") or {}).get(d)
        lc = (m.get("label_consistency") or {}).get(d) or {}
        pair = f"{s['source']} -> {s['target']}"
        realism.append([
            d, pair, f"{ts['accuracy']:.3f} [{ts['ci'][0]:.3f}, {ts['ci'][1]:.3f}]", format_p(ts["p_value"]), ts["n_test"],
            _ref(ts), _f(fid["value"], 2) if fid else "n/a", _kid(kid),
        ])  # fmt: skip
        faithful.append([
            d, pair, _f(lc.get("share")), _f(lc.get("real_target_share")), _f(lc.get("input_share")),
            lc.get("rule", "n/a"), f"{ssim['mean']:.3f} ± {ssim['std']:.3f} ({ssim['n']})",
        ])  # fmt: skip
    out = table(["direction", "source -> target", "two-sample accuracy [95% CI]", "p (vs 0.5)", "n test",
                 "same test, real vs real", "FID", "KID (mean ± std)"], realism,
                caption="Realism: can translations be told from real target images?")  # fmt: skip
    out += table(["direction", "source -> target", "label consistency", "real target", "inputs", "rule",
                  "cycle SSIM (mean ± std, n)"], faithful,
                 caption="Faithfulness: share in the target domain for the classifier (translations, real target "
                 "images, untranslated inputs) and SSIM(input, reconstruction)")  # fmt: skip
    samples = ", ".join(
        f"{d}: {s['n_source']} translated, {s['n_real_target']} real" for d, s in m["samples"].items()
    )
    out += paragraph(
        f"Images per set (requested {m['n_requested']}): {samples}. 'Same test, real vs real': the two-sample test "
        "on two halves of the real target images, which should be near 0.5.",
        "note",
    )
    for key, why in (m.get("null_reasons") or {}).items():
        out += paragraph(f"{key}: not computed ({why}).", "warning")
    return out


def _kid(kid: dict | None) -> str:
    if not kid:
        return "n/a"
    if kid.get("std") is None:  # subsets as large as the sets (fewer than 4 images)
        return f"{kid['mean']:.4f} (std n/a)"
    return f"{kid['mean']:.4f} ± {kid['std']:.4f}"


def _extractor(m: dict) -> str:
    ex = m.get("extractor")
    if not ex:
        return paragraph(
            "No feature extractor: FID and KID were not computed. Pass --classifier RUN (its pooled features) "
            "or --extractor inception-torchvision:FILE.",
            "note",
        )
    kid = next(iter((m.get("kid") or {}).values()), {})
    body = paragraph(f"FID/KID extractor: {ex['name']}: {ex['description']} ({ex.get('file', '')}).")
    body += paragraph(f"Caveat: {ex['note']}.", "warning")
    if kid:
        body += paragraph(
            f"KID: {kid['subsets']} random subsets of {kid['subset_size']} images per set (half the smaller set; "
            "polynomial kernel, degree 3); ± is the std of the subset estimates, their spread, not a standard "
            "error of the mean.",
            "note",
        )
    return body


def _classifier(m: dict) -> str:
    c = m.get("classifier")
    if not c:
        return paragraph(
            "No classifier given (--classifier RUN): label consistency and the Grad-CAM difference maps were not "
            "computed.",
            "note",
        )
    th = ", ".join(f"{k} {v:.3g}" for k, v in c["thresholds"].items())
    return paragraph(
        f"Classifier {c['run']} ({c['model']}, {c['task']}, labels {', '.join(c['labels'])}, input {c['input_size']} "
        f"px); thresholds from {c['threshold_source']}: {th}"
        + (f", temperature {c['temperature']:.3g}" if c.get("temperature") else "")
        + "."
    )


def gallery_section(run: SynthRunDir, m: dict) -> str:
    entries = m.get("gallery") or []
    if not entries:
        return paragraph("No gallery images were saved.", "note")
    settings = m.get("gallery_settings") or {}
    parts = [
        paragraph(
            f"|translated - input| on a magma scale from 0 to {settings.get('difference_vmax', 1):.2f} (shared by "
            "every image). "
            + (
                f"Grad-CAM at {settings['layer']} for {settings['label']}: red where the classifier's evidence "
                "appeared, blue where it vanished (each map min-max scaled, so this shows where, not how much); "
                "a blank map means both Grad-CAMs were empty, common on small inputs."
                if settings.get("layer")
                else "No Grad-CAM difference (no classifier)."
            ),
            "note",
        )
    ]
    for e in entries:
        figs = []
        for kind, rel in e["files"].items():
            path = run.root / rel
            if path.is_file():
                figs.append(figure(path, KIND_CAPTION.get(kind, kind)))
        title = f"#{e['index']} {e['direction']}: {e['source_image']} (mean |difference| {e['mean_abs_difference']:.3f})"
        parts.append(f'<h4>{esc(title)}</h4><div class="gallery">{"".join(figs)}</div>')
    return "".join(parts)


def _training(run: SynthRunDir) -> str:
    body = ""
    if run.history.is_file():
        hist = pd.read_csv(run.history)
        cols = [
            c for c in ("epoch", "g_adv", "cycle", "identity", "d", "lr", "train_images_per_s") if c in hist
        ]
        rows = [
            [_f(v, 4) if isinstance(v, float) else v for v in r] for r in hist[cols].itertuples(index=False)
        ]
        body += table(cols, rows[-20:], caption="Training losses per epoch (last 20)")
    grids = sorted(run.samples.glob("epoch-*.png")) if run.samples.is_dir() else []
    if grids:
        body += figure(grids[-1], f"training samples, {grids[-1].stem}: input / translated / reconstructed")
    return body or paragraph("No training history found.", "note")


CAVEATS = (
    "Realism is not faithfulness: a CycleGAN can add or remove disease while keeping images realistic (Cohen et "
    "al., MICCAI 2018), so read the label consistency and the difference maps beside the two-sample test.",
    "A high cycle SSIM does not prove the translation kept the anatomy: a generator can hide what it needs to undo "
    "a change in faint patterns (Chu et al. 2017).",
    "A two-sample accuracy near 0.5 means this classifier could not separate the sets at this sample size, not that "
    "they are the same distribution.",
    "Whether synthetic images help a classifier is measured separately (benchmarks/synth_augmentation.py).",
)


def build_synth_report(run: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Write ``RUN/report.html`` (or ``out``) from ``RUN/synth_metrics.json``; replaces only a page
    chestxai wrote unless ``force``."""
    rd = SynthRunDir(Path(run))
    if not rd.metrics.is_file():
        raise FileNotFoundError(f"{rd.metrics} not found; run `chestxai synth evaluate {run}` first")
    m = read_json(rd.metrics)
    target = Path(out) if out is not None else rd.report
    check_overwrite(target, force, has_marker(GENERATOR), "report")
    sections = [
        ("summary", "Summary", _summary(m)),
        ("realism", "Realism and faithfulness", realism_table(m) + _extractor(m) + _classifier(m)),
        ("gallery", "Gallery", gallery_section(rd, m)),
        ("training", "Training", _training(rd)),
        ("caveats", "Caveats", "".join(paragraph(c) for c in CAVEATS)),
    ]
    header = paragraph(
        "Synthetic chest X-rays from a CycleGAN. Research software, not for clinical use; synthetic images "
        "must never be presented as real patients' images.",
        "note",
    )
    write_text(target, page(f"chestxai synthesis report: {rd.root.name}", sections, header))
    return target

"""The verdict per (method, layer), and which pipeline (model + method + layer) to trust.

One scorecard entry holds every criterion's block; the verdict says which pass, which fail and
which were not measured (no ground truth, no other seeds or architectures given), in words:

* **localisation** (CheXlocalize / Arun et al.'s utility): the method beats the seeded random map
  put through the same pipeline on hit rate and on mIoU with Otsu - the paired bootstrap
  difference's 95% CI excludes 0 (``versus_control[metric]["better"]`` and a CI low above 0);
* **randomisation**: Arun et al.'s rule (:mod:`chestxai.scorecard.trust`);
* **repeatability** / **reproducibility**: Arun et al.'s rules, when those runs were given;
* **image dependence**: the maps differ from image to image - random pairs of maps of different
  images do not rank pixels alike (:func:`chestxai.explain.map_agreement.image_independence`).

A pipeline is **trusted** when every measured criterion passes (and at least one was measured).
Agreement with ground truth measures the model and the method together: a good hit rate says the
pair points at the lesion, not that the method is faithful to any model, nor that the model looks
where a radiologist would for reasons a radiologist would accept - the verdict says so
(:data:`JOINT_NOTE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chestxai.explain.map_agreement import image_independence

CRITERIA = ("localization", "randomization", "repeatability", "reproducibility", "image_dependence")
#: the localisation figures that must beat the random control (both of them, where measured)
LOCALISATION_VS_CONTROL = ("hit_rate", "miou_otsu")
JOINT_NOTE = (
    "agreement with ground truth measures the model and the method together: a pipeline that localises "
    "well says the model and the method point at the finding as a pair, not that the method is right about "
    "any other model"
)
PASS, FAIL, NOT_MEASURED = "pass", "fail", "not measured"


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.2f}"


def _localisation(block: Mapping[str, Any] | None) -> tuple[str, str]:
    if not block:
        return NOT_MEASURED, "no ground truth on these items"
    versus = block.get("versus_control") or {}
    measured = [m for m in LOCALISATION_VS_CONTROL if versus.get(m) is not None]
    if not measured:
        return NOT_MEASURED, "no comparison with the random control"
    words, ok = [], True
    for metric in measured:
        diff = versus[metric].get("difference") or {}
        low = diff.get("ci_low")
        better = bool(versus[metric].get("better")) and (low is None or low > 0)
        ok &= better
        ours = _fmt((block.get(metric) or {}).get("value"))
        theirs = _fmt(((block.get("control") or {}).get(metric) or {}).get("value"))
        ci = f" (difference 95% CI {_fmt(low)} to {_fmt(diff.get('ci_high'))})" if diff else ""
        words.append(f"{metric} {ours} vs random {theirs}{ci}")
    lead = "beats the random map on" if ok else "does not beat the random map on"
    return (PASS if ok else FAIL), f"{lead} {'; '.join(words)}"


def _similarity(block: Mapping[str, Any] | None, absent: str) -> tuple[str, str]:
    if not block:
        return NOT_MEASURED, absent
    status = {True: PASS, False: FAIL, None: NOT_MEASURED}[block.get("pass")]
    return status, str(block.get("verdict") or block.get("rule") or "")


def _image_dependence(baseline: Mapping[str, Any] | None, name: str) -> tuple[str, str]:
    if not baseline or baseline.get("spearman") is None:
        return NOT_MEASURED, "fewer than two maps of different images"
    sentence = image_independence(baseline, name)
    if sentence is not None:
        return FAIL, sentence
    return PASS, (
        f"maps of different images differ: {baseline.get('n_pairs')} random pairs have mean |Spearman| "
        f"{baseline['spearman']:.2f} and mean SSIM {_fmt(baseline.get('ssim'))}"
    )


def verdict(entry: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """The verdict of one (method, layer) entry ``{localization, randomization, repeatability?,
    reproducibility?, image_agreement}`` (see the module doc); ``name`` (e.g. "hirescam at layer2")
    heads the line. Returns ``{criteria: {criterion: {status, why}}, passes, fails, not_measured,
    trusted, line, note}``."""
    name = name or "this pipeline"
    found = {
        "localization": _localisation(entry.get("localization")),
        "randomization": _similarity(entry.get("randomization"), "no randomisation run"),
        "repeatability": _similarity(entry.get("repeatability"), "no other seeds of the recipe given"),
        "reproducibility": _similarity(entry.get("reproducibility"), "no other architectures given"),
        "image_dependence": _image_dependence(entry.get("image_agreement"), name),
    }
    criteria = {c: {"status": s, "why": why} for c, (s, why) in found.items()}
    passes = [c for c in CRITERIA if criteria[c]["status"] == PASS]
    fails = [c for c in CRITERIA if criteria[c]["status"] == FAIL]
    missing = [c for c in CRITERIA if criteria[c]["status"] == NOT_MEASURED]
    trusted = bool(passes) and not fails
    if trusted:
        line = f"{name}: trusted - passes {', '.join(passes)}"
    elif fails:
        line = f"{name}: not trusted - fails {', '.join(fails)} ({criteria[fails[0]]['why']})"
        if passes:
            line += f"; passes {', '.join(passes)}"
    else:
        line = f"{name}: no verdict - no criterion could be measured"
    if missing and passes + fails:
        line += f"; not measured: {', '.join(missing)}"
    return {
        "criteria": criteria,
        "passes": passes,
        "fails": fails,
        "not_measured": missing,
        "trusted": trusted,
        "line": line,
        "note": JOINT_NOTE,
    }


def _hit_rate(entry: Mapping[str, Any]) -> float | None:
    value = ((entry.get("localization") or {}).get("hit_rate") or {}).get("value")
    return None if value is None else float(value)


def recommend(
    entries: Mapping[str, Mapping[str, Mapping[str, Any]]], model: str | None = None
) -> dict[str, Any]:
    """The pipeline to trust among ``entries`` (``{method: {layer: entry}}``) of one ``model``: the
    trusted (method, layer) with the best hit rate; without ground truth (no hit rate anywhere), the
    trusted one that passes the most criteria; else none. Returns ``{pipeline: {model, method,
    layer, hit_rate} | None, trusted: [{method, layer, hit_rate}], line, note}``; ``note`` is
    :data:`JOINT_NOTE`, to be shown wherever the recommendation is."""
    trusted: list[dict[str, Any]] = []
    for method, layers in entries.items():
        for layer, entry in layers.items():
            v = entry.get("verdict") or verdict(entry, f"{method} at {layer}")
            if v["trusted"]:
                trusted.append(
                    {
                        "method": method,
                        "layer": layer,
                        "hit_rate": _hit_rate(entry),
                        "n_passes": len(v["passes"]),
                    }
                )
    # best hit rate first; pipelines without one after those with one; then most criteria passed
    trusted.sort(key=lambda t: (t["hit_rate"] is None, -(t["hit_rate"] or 0.0), -t["n_passes"]))
    who = f"{model} + " if model else ""
    if not trusted:
        pipeline = None
        line = (
            f"No pipeline{' of ' + model if model else ''} passes every measured criterion: "
            "trust none of these maps as an explanation"
        )
    else:
        best = trusted[0]
        pipeline = {"model": model, **{k: best[k] for k in ("method", "layer", "hit_rate")}}
        why = (
            f"the best hit rate ({best['hit_rate']:.2f}) among the {len(trusted)} trusted pipeline(s)"
            if best["hit_rate"] is not None
            else f"trusted by every measured criterion ({best['n_passes']} passed; no ground truth, so no hit rate)"
        )
        line = f"Trust {who}{best['method']} at {best['layer']}: {why}"
    return {
        "pipeline": pipeline,
        "trusted": [{k: t[k] for k in ("method", "layer", "hit_rate")} for t in trusted],
        "line": f"{line}; {JOINT_NOTE}",
        "note": JOINT_NOTE,
    }

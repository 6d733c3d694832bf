"""The scorecard in HTML: ``DIR/report.html`` of ``chestxai scorecard`` and a section of ``chestxai report RUN``.

Both show the same body (:func:`scorecard_body`): per (method, layer) each criterion beside its
control and the verdict; the recommended pipeline; the sentences that matter more than any table
(maps that hardly change from image to image, maps unchanged by weight randomisation); the
reminder that agreement with ground truth measures the model and the method together; with NIH
boxes, ChestX-ray8's Table 4 layout; and one line per protocol followed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chestxai.atomic import write_text
from chestxai.report.html import GENERATOR, esc, page, paragraph, table
from chestxai.rundir import RunDir, ScorecardDir
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import read_json
from chestxai.scorecard.run import TOGETHER

log = logging.getLogger(__name__)

HEADLINE = (
    ("hit_rate", "hit rate"),
    ("miou_otsu", "mIoU Otsu"),
    ("miou_tuned", "mIoU tuned"),
    ("auprc", "AUPRC"),
)


def has_scorecard(run: RunDir) -> bool:
    return run.scorecard.json.is_file()


def _ci(entry: dict | None) -> str:
    """``{value, ci_low, ci_high}`` -> ``0.412 [0.300, 0.520]`` (``n/a`` when not measured)."""
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "n/a"
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{entry['value']:.3f}{ci}"


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _passed(flag: Any) -> str:
    return {True: "pass", False: "FAIL"}.get(flag, "not measured")


def _agreement(block: dict | None) -> str:
    if not block:
        return "not given"
    if block.get("ssim") is None:
        return "not measured"
    return f"{_num(block['ssim'])} vs {_num(block.get('baseline_ssim'))}: {_passed(block.get('pass'))}"


def _entries(card: dict):
    for method, by_layer in card.get("methods", {}).items():
        for layer, entry in by_layer.items():
            yield method, layer, entry


def criteria_table(card: dict) -> str:
    """One row per (method, layer): each criterion, its control beside it, and the verdict."""
    header = ["method @ layer"]
    for _, title in HEADLINE:
        header += [title, "random"]
    header += ["random-pairs SSIM", "randomisation (final SSIM vs baseline)", "repeatability", "reproducibility",
               "verdict"]  # fmt: skip
    rows = []
    for method, layer, e in _entries(card):
        if "not_applicable" in e:
            rows.append(
                [f"{method} @ {layer}", *["-"] * (len(header) - 2), f"not applicable: {e['not_applicable']}"]
            )
            continue
        loc = e.get("localization") or {}
        ctrl = loc.get("control") or {}
        row = [f"{method} @ {layer}"]
        for key, _ in HEADLINE:
            row += [_ci(loc.get(key)), _ci(ctrl.get(key))]
        rnd = e.get("randomization") or {}
        v = e.get("verdict") or {}
        row += [
            _num((e.get("image_agreement") or {}).get("ssim")),
            f"{_num(rnd.get('final_ssim'))} vs {_num(rnd.get('baseline_ssim'))}: {_passed(rnd.get('pass'))}",
            _agreement(e.get("repeatability")),
            _agreement(e.get("reproducibility")),
            ("trusted" if v.get("trusted") else "not trusted") + (f": {v['line']}" if v.get("line") else ""),
        ]
        rows.append(row)
    return table(header, rows, caption="each criterion beside the random map's (95% CIs)", keys=1)


def warnings(card: dict) -> list[str]:
    """The sentences a reader must not miss: image-independent maps, maps that randomisation left unchanged."""
    out = []
    for method, layer, e in _entries(card):
        sentence = (e.get("image_agreement") or {}).get("image_independent")
        if sentence:
            out.append(sentence)
        rnd = e.get("randomization") or {}
        if rnd.get("pass") is False:
            why = rnd.get("verdict") or (
                f"its maps of the fully randomised model are as alike to the trained ones "
                f"(SSIM {_num(rnd.get('final_ssim'))}) as maps of different images are "
                f"(baseline {_num(rnd.get('baseline_ssim'))})"
            )
            out.append(f"{method} at {layer} is unchanged by weight randomisation: {why}")
    return out


def scorecard_body(card: dict) -> str:
    items = card.get("items") or {}
    truth = card.get("ground_truth")
    parts = [
        paragraph(
            f"Run {card.get('run')} ({card.get('model')}), split {card.get('split')}: {items.get('n_items', 0)} "
            f"items on {items.get('n_images', 0)} images ({items.get('n_positive', 0)} positives with ground "
            f"truth, {items.get('n_negative', 0)} known negatives, {items.get('n_skipped', 0)} skipped); ground "
            f"truth: {truth or 'none'}; thresholds tuned on {card.get('val_split') or 'nothing (no val truth)'}; "
            f"{len(card.get('seeds') or [])} other seeds, {len(card.get('architectures') or [])} other "
            f"architectures. {card.get('seconds', 'n/a')} s, peak RSS {card.get('peak_rss_mb', 'n/a')} MB."
        )
    ]
    if truth is None:
        parts.append(
            paragraph(
                "This run's data has no ground-truth boxes or masks: localisation is not measured, only "
                "randomisation and repeatability/reproducibility (which need none).",
                "warning",
            )
        )
    rec = card.get("recommended") or {}
    if rec.get("line"):
        parts.append(f"<p><strong>{esc(rec['line'])}</strong></p>")
    parts.append(
        paragraph(f"Note: {TOGETHER}: a pipeline (model + method + layer) is judged, not a method alone.")
    )
    parts += [paragraph(w, "warning") for w in warnings(card)]
    parts.append(criteria_table(card))
    cx8 = card.get("chestxray8")
    if cx8:
        parts.append(
            paragraph(
                f"ChestX-ray8 Table 4 layout for {cx8['method']} at {cx8['layer']} (published figures beside "
                "ours are other protocols and scales)"
            )
        )
        parts.append(f"<pre>{esc(cx8['table'])}</pre>")
    protocols = card.get("protocols") or {}
    parts.append(
        "<ul>"
        + "".join(f"<li><strong>{esc(k)}</strong>: {esc(v)}</li>" for k, v in protocols.items())
        + "</ul>"
    )
    return "".join(parts)


def scorecard_section(run: RunDir) -> str:
    """The ``chestxai report RUN`` section, from ``RUN/scorecard/scorecard.json``."""
    return scorecard_body(read_json(run.scorecard.json))


def build_scorecard_report(out: str | Path, force: bool = False) -> Path:
    """``DIR/report.html`` from ``DIR/scorecard.json``; a file this command did not write is refused."""
    where = ScorecardDir(Path(out))
    card = read_json(where.json)
    path = check_overwrite(where.report, force, has_marker(GENERATOR), "scorecard report")
    title = f"chestxai scorecard: {Path(card.get('run', '')).name}"
    write_text(path, page(title, [("scorecard", "Trust scorecard", scorecard_body(card))]))
    log.info("wrote %s", path)
    return path

"""Print a finished ``chestxai bench lesions`` run's tables as Markdown (for docs/BENCHMARKS.md).

The benchmark itself is the command (it trains, explains and writes ``DIR/bench.json``)::

    flock /tmp/chestxai-heavy.lock .venv/bin/chestxai bench lesions --source nih \
        --root ../shared/data/nih-bbox --size 128 --out /tmp/bench-nih
    .venv/bin/python benchmarks/lesion_localization.py /tmp/bench-nih [/tmp/bench-tag ...]

For each DIR: the AUCs, the time, every (method, layer) with the random control, each method's best
layer with faithfulness and the sanity check, and the shortcut figures when the task had a cue.
Targets (issue 10): val AUC >= 0.95; best pointing game >= 0.9 (tolerance <= 4 px at 128 px) and
>= 4x the random control; under ~15 CPU-minutes at 128 px.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chestxai.rundir import BenchDir


def _f(v, d: int = 3) -> str:
    return "n/a" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))


def markdown(b: dict) -> str:
    sec = b["seconds"]
    best, rnd = b["best"] or {}, b["random"] or {}
    lines = [
        f"**{b['source']}**, {b['n_backgrounds']} backgrounds x {b['lesion']['variants']} variants at "
        f"{b['lesion']['size']} px, lesion radius {b['lesion']['lesion']['radius_px']} px, contrast "
        f"{b['lesion']['lesion']['contrast']}, {b['model']} from scratch, {b['epochs']} epochs: val AUC "
        f"{_f(b['val_auc'])}, test AUC {_f(b['test_auc'])}; {b['n_explained']} test lesions, pointing "
        f"tolerance {b['pointing_tolerance_px']:g} px. Time: build {sec['build']:.0f} s, train "
        f"{sec['train']:.0f} s, explain {sec['explain']:.0f} s, total {sec['total'] / 60:.1f} min.",
        f"Best: {best.get('method')} @ {best.get('layer')} pointing game {_f(best.get('pointing_game'))} = "
        f"{_f(best.get('vs_random'), 1)}x random ({_f(rnd.get('pointing_game'))} at {rnd.get('layer')}); "
        f"heatmaps aligned by {tuple(best['alignment_shift_px']) if best.get('alignment_shift_px') else 'n/a'} px "
        "(measured on this model), "
        f"pointing game {_f(best.get('pointing_game_unaligned'))} without alignment.",
        "",
    ]
    layers = list(dict.fromkeys(r["layer"] for r in b["per_layer"]))
    by = {(r["method"], r["layer"]): r for r in b["per_layer"]}
    methods = list(dict.fromkeys(r["method"] for r in b["per_layer"]))
    lines.append("| method | " + " | ".join(f"{L} PG / IoBB / energy" for L in layers) + " |")
    lines.append("|---|" + "---|" * len(layers))
    for m in methods:
        cells = [
            f"{_f(by[(m, L)]['pointing_game'], 2)} / {_f(by[(m, L)]['iobb'], 2)} / {_f(by[(m, L)]['energy'], 2)}"
            if (m, L) in by
            else "n/a"
            for L in layers
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "| method (best layer) | PG aligned (shift px) / unaligned | deletion AUC | insertion AUC | ROAD "
              "| sanity |Spearman| | sanity |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, r in [*b["methods"].items(), ("random", rnd)]:
        fa, sa = r.get("faithfulness") or {}, r.get("sanity") or {}
        verdict = "" if "passed" not in sa else ("pass" if sa["passed"] else "FAIL")
        shift = r.get("alignment_shift_px")
        pg = f"{_f(r.get('pointing_game'))} ({tuple(shift) if shift else 'n/a'}) / {_f(r.get('pointing_game_unaligned'))}"
        lines.append(f"| {m} ({r.get('layer')}) | {pg} | {_f(fa.get('deletion_auc'))} | {_f(fa.get('insertion_auc'))} | "
                     f"{_f(fa.get('road'))} | {_f(sa.get('spearman'))} | {verdict} |")  # fmt: skip
    if b.get("shortcut"):
        s = b["shortcut"]
        lines += ["", f"Shortcut `{s['cue']}` in the {s['cue_in_class']} class: test AUC {_f(s['test_auc_with_cue'])} "
                  f"with the cue, {_f(s['test_auc_without_cue'])} without (drop {_f(s['auc_drop'])}).", "",
                  "| method (layer) | energy on cue | energy on lesion | peak on cue | peak on lesion | PG without cue |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for m, r in s["methods"].items():
            lines.append(f"| {m} ({r.get('layer')}) | {_f(r.get('energy_on_cue'))} | {_f(r.get('energy_on_lesion'))} | "
                         f"{_f(r.get('peak_on_cue'))} | {_f(r.get('peak_on_lesion'))} | "
                         f"{_f(r.get('clean_pointing_game'))} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "dirs", nargs="+", type=Path, help="--out folders of finished `chestxai bench lesions` runs"
    )
    for d in ap.parse_args().dirs:
        print(markdown(json.loads(BenchDir(d).bench_json.read_text())))
        print()


if __name__ == "__main__":
    main()

"""``DIR/report.html`` of ``chestxai bench lesions``: a self-contained page built from ``bench.json``.

What a reader needs from it, in order: did the model learn the task (val/test AUC), which (method,
layer) localizes the lesions and by how much it beats the random map, how every method does at
every layer (the layer matters more than the method), the lesion settings that define the task,
and, for a shortcut task, how much of the AUC was the cue and whether the heatmaps show it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chestxai.atomic import write_text
from chestxai.metrics.plots import save_figure
from chestxai.report.html import GENERATOR, figure, page, paragraph, table
from chestxai.rundir import BenchDir
from chestxai.rundir.guard import check_overwrite, has_marker


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _summary(b: dict) -> str:
    best, rnd = b.get("best") or {}, b.get("random") or {}
    lines = [
        f"Source {b['source']} ({b['n_backgrounds']} real backgrounds, {b['n_images']} images), "
        f"{b['model']} trained from scratch for {b['epochs']} epochs in {b['seconds']['train'] / 60:.1f} min: "
        f"val AUC {_f(b['val_auc'])}, test AUC {_f(b['test_auc'])}.",
        f"Best (method, layer): {best.get('method')} at {best.get('layer')}, pointing game "
        f"{_f(best.get('pointing_game'))} on {b['n_explained']} test lesions (tolerance "
        f"{b['pointing_tolerance_px']:g} px) vs {_f(rnd.get('pointing_game'))} for the random map "
        f"({_f(best.get('vs_random'), 1)}x).",
    ]
    if best.get("alignment_shift_px") is not None:
        lines.append(
            f"Its heatmaps were moved by {tuple(best['alignment_shift_px'])} px (rows, cols), the alignment shift "
            f"measured on this trained model (rounded to 0.5 px); without alignment the same method and layer "
            f"score {_f(best.get('pointing_game_unaligned'))}. The pointing game depends on that shift."
        )
    layers = list(dict.fromkeys(r["layer"] for r in b["per_layer"]))
    if len(layers) > 1 and best.get("layer"):
        deepest = [r for r in b["per_layer"] if r["layer"] == layers[-1] and r["method"] != "random"]
        top = max((r["pointing_game"] or 0 for r in deepest), default=None)
        lines.append(
            f"Recommended target layer for this kind of finding: {best['layer']}. At {layers[-1]} (the deepest "
            f"measured, where CAMs read by default) the best method reaches {_f(top)}."
        )
    body = "".join(paragraph(t) for t in lines)
    if b["val_auc"] is not None and b["val_auc"] < 0.9:
        body += paragraph(
            "The model did not learn the task well (val AUC below 0.9): its heatmaps cannot be expected to "
            "find the lesions. Train longer (--epochs) or make the lesions easier (--difficulty).",
            "warning",
        )
    pg, rpg = best.get("pointing_game"), rnd.get("pointing_game")
    if pg is not None and rpg is not None and pg <= 2 * rpg:
        body += paragraph("No method localizes clearly better than the random map here.", "warning")
    return body


def _methods(b: dict) -> str:
    header = ["method", "best layer", "grid", "pointing game", "IoBB", "IoBB>0.5", "energy in mask",
              "deletion AUC", "insertion AUC", "sanity |Spearman|", "sanity"]  # fmt: skip
    labels = b.get("label_sanity")
    if labels:
        header += ["label-random |Spearman|", "label sanity"]
    rows = []
    entries = sorted(b["methods"].items(), key=lambda kv: -(kv[1]["pointing_game"] or 0))
    if b.get("random"):
        entries.append(("random (control)", b["random"] | {"sanity": None}))
    for name, r in entries:
        faith = r.get("faithfulness") or {}
        san = r.get("sanity") or {}
        verdict = "n/a" if "passed" not in san else ("passes" if san["passed"] else "FAILS")
        rows.append([name, r["layer"], "x".join(map(str, r.get("grid") or [])), _f(r["pointing_game"]),
                     _f(r["iobb"]), _f(r.get("acc_iobb_0.5")), _f(r["energy"]), _f(faith.get("deletion_auc")),
                     _f(faith.get("insertion_auc")), _f(san.get("spearman")), verdict])  # fmt: skip
        if labels:
            lab = r.get("label_sanity") or {}
            passed = lab.get("passed")
            rows[-1] += [
                _f(lab.get("spearman")),
                "n/a" if passed is None else ("passes" if passed else "FAILS"),
            ]
    note = paragraph(
        "Each method at its best layer (ranked by pointing game, then IoBB, then energy). Deletion AUC: lower "
        "is better; insertion: higher (on logits, on the first items); sanity: similarity of the maps after "
        "randomising every weight (cascading, Adebayo et al. 2018); a method whose maps stay similar fails.",
        "note",
    )
    if labels:
        note += paragraph(
            f"Label randomisation: a second model trained on the same images with permuted labels (best val AUC "
            f"{_f(labels.get('permuted_val_auc'))}, {labels.get('train_seconds', 0):.0f} s); its maps compared with "
            f"the trained model's on {labels.get('n_images')} test lesions. A method whose maps stay similar "
            f"(|Spearman| >= {labels.get('threshold')}) fails: they do not depend on what the labels taught.",
            "note",
        )
    skipped = "".join(paragraph(f"{m}: {why}", "note") for m, why in b.get("not_applicable", {}).items())
    return table(header, rows) + note + skipped


def _layers(b: dict) -> str:
    layers = list(dict.fromkeys(r["layer"] for r in b["per_layer"]))
    methods = list(dict.fromkeys(r["method"] for r in b["per_layer"]))
    by = {(r["method"], r["layer"]): r for r in b["per_layer"]}
    out = ""
    for metric, title in (("pointing_game", "pointing game"), ("iobb", "IoBB"), ("energy", "energy in mask")):
        rows = [[m, *[_f(by[(m, L)][metric]) if (m, L) in by else "n/a" for L in layers]] for m in methods]
        out += table(["method", *layers], rows, caption=f"{title} per target layer")
    grids = {r["layer"]: "x".join(map(str, r.get("grid") or [])) for r in b["per_layer"]}
    out += paragraph("Feature-map grid per layer: " + ", ".join(f"{k} {v}" for k, v in grids.items()), "note")
    return out


def _settings(b: dict) -> str:
    les = b["lesion"]
    rows = [
        [k, json.dumps(v) if isinstance(v, (dict, list)) else _f(v)] for k, v in les.items() if k != "lesion"
    ]
    rows += [[f"lesion {k}", json.dumps(v)] for k, v in les["lesion"].items()]
    return table(["setting", "value"], rows)


def _shortcut(b: dict) -> str:
    s = b["shortcut"]
    body = paragraph(
        f"Cue '{s['cue']}' in the {s['cue_in_class']} class only, in train, val and test. Test AUC with the cue "
        f"{_f(s['test_auc_with_cue'])}, on the same images without it {_f(s['test_auc_without_cue'])}: a drop "
        f"of {_f(s['auc_drop'])}."
    )
    rows = [[m, r.get("layer"), _f(r.get("energy_on_cue")), _f(r.get("energy_on_lesion")),
             _f(r.get("peak_on_cue")), _f(r.get("peak_on_lesion")), _f(r.get("clean_pointing_game"))]
            for m, r in s["methods"].items()]  # fmt: skip
    body += table(["method", "layer", "energy on cue", "energy on lesion", "peak on cue", "peak on lesion",
                   "pointing game without cue"], rows)  # fmt: skip
    if s["auc_drop"] > 0.05:
        body += paragraph(
            "The model relies on the cue: its AUC falls when the cue is removed. Heatmaps with more energy on "
            "the cue than on the lesion would have shown it.",
            "warning",
        )
    return body


def _examples_figure(bench: BenchDir) -> str:
    path = bench.examples
    if not path.exists():
        return paragraph("No example heatmaps were saved.", "note")
    from matplotlib.figure import Figure

    from chestxai.explain.overlay import resize_heatmap

    with np.load(path, allow_pickle=False) as z:
        images, masks, layers, maps, method = (
            z["images"],
            z["masks"],
            z["layers"],
            z["heatmaps"],
            str(z["method"]),
        )
    n, nl = len(images), len(layers)
    fig = Figure(figsize=(1.8 * (nl + 1), 1.8 * n))
    axes = fig.subplots(n, nl + 1, squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i], cmap="gray")
        axes[i, 0].contour(masks[i], levels=[0.5], colors="lime", linewidths=0.8)
        for j in range(nl):
            ax = axes[i, j + 1]
            ax.imshow(images[i], cmap="gray")
            ax.imshow(resize_heatmap(maps[j, i], images[i].shape), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.contour(masks[i], levels=[0.5], colors="white", linewidths=0.8)
    axes[0, 0].set_title("image + lesion", fontsize=8)
    for j, layer in enumerate(layers):
        axes[0, j + 1].set_title(f"{method} @ {layer}", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    out = save_figure(fig, bench.examples_figure)
    return figure(
        out, f"{method} at every layer on the first {n} test lesions (contour: the ground-truth mask)"
    )


def build_bench_report(out_dir: str | Path, force: bool = False) -> Path:
    """Write ``DIR/report.html`` from ``DIR/bench.json`` (replaces only a report chestxai wrote)."""
    bench = BenchDir(Path(out_dir))
    if not bench.bench_json.exists():
        raise FileNotFoundError(
            f"{bench.bench_json} not found; run `chestxai bench lesions --out {out_dir}` first"
        )
    b = json.loads(bench.bench_json.read_text())
    check_overwrite(bench.report, force, has_marker(GENERATOR), "report")
    sections = [
        ("summary", "Summary", _summary(b)),
        ("methods", "Methods at their best layer", _methods(b)),
        ("layers", "Every method at every layer", _layers(b)),
        ("examples", "Examples", _examples_figure(bench)),
    ]
    if b.get("shortcut"):
        sections.append(("shortcut", "Shortcut detection", _shortcut(b)))
    sections.append(("settings", "Task settings", _settings(b)))
    header = paragraph(
        "Semi-synthetic lesions drawn into real X-rays (ground truth known to the pixel). Research software, "
        "not for clinical use.",
        "note",
    )
    write_text(bench.report, page("chestxai lesion localization benchmark", sections, header))
    return bench.report

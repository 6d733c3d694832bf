"""Why do the quickstart's HiResCAM maps hardly change from image to image? Measure, do not guess.

Reads a finished quickstart run (``chestxai quickstart --run-dir RUN``) and prints, for the
method it shows (HiResCAM at ``layer1.1``, a 7 x 7 grid at 28 px) on the first N test items:

1. **image-independence**: where each map's maximum falls (28-px cells), Arun et al.'s
   random-pairs baseline (:func:`chestxai.explain.map_agreement.random_pairs_baseline`) and the
   median correlation of each map with the mean map;
2. **is the hot cell in the weights' geometry or in the images?** the same figures for an
   untrained network of the same architecture, and for the trained network on a constant image
   and on noise images (a cell that is hot for every one of them is not a finding);
3. **is it a cue the model uses?** the change of the probability explained when the hot cell's
   4 x 4 px patch is replaced by the image's mean, against the same for a random cell;
4. **is the randomisation defective?** the relative change of each block's output when that
   block alone is re-initialised (:func:`chestxai.explain.sanity.randomise_`, PyTorch's own
   initialisation, and a redraw at each trained tensor's scale), HiResCAM's |Spearman| to the
   trained maps after it, and how much the trained block adds to its input
   (:func:`chestxai.explain.sanity.residual_share`);
5. the random-pairs baseline of every method at every layer, to see whether another default
   would give maps that differ from image to image.

Run (2 CPU cores: under the shared lock)::

    flock /tmp/chestxai-cpu.lock .venv/bin/python benchmarks/quickstart_maps.py runs/quickstart
"""

from __future__ import annotations

import argparse
import copy
import json
from collections import Counter

import numpy as np
import torch

from chestxai.explain.explainer import Explainer
from chestxai.explain.map_agreement import map_similarity, random_pairs_baseline
from chestxai.explain.measure import model_inputs
from chestxai.explain.run import open_explained, select_items
from chestxai.explain.sanity import block_output_change, parameter_blocks, randomise_, residual_share


def redraw_at_trained_scale_(modules, seed: int) -> None:
    """Every parameter redrawn from a normal at its trained tensor's mean and std (buffers kept): a
    re-initialisation that keeps each tensor's trained scale, to compare with PyTorch's own."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                std = float(p.std()) if p.numel() > 1 else 0.02
                p.copy_(torch.randn(p.shape, generator=gen) * std + float(p.mean()))


def maps_of(model, x, indices, method, layer):
    explainer = Explainer(model, method, layer=layer, seed=0)
    return explainer.layer_name, np.concatenate(
        [explainer.explain(x[lo : lo + 16], indices[lo : lo + 16]) for lo in range(0, len(x), 16)]
    )


def summary(maps: np.ndarray, cell: int) -> dict:
    """Where the maxima fall (cells of ``cell`` px), the random-pairs baseline, correlation with the mean."""
    flat = maps.reshape(len(maps), -1)
    nonempty = np.ptp(flat, axis=1) > 0
    peaks = Counter(
        (int(r) // cell * cell, int(c) // cell * cell)
        for r, c in (np.unravel_index(int(np.argmax(m)), m.shape) for m in maps[nonempty])
    )
    mean = flat[nonempty].mean(0)
    corr = [float(np.corrcoef(m, mean)[0, 1]) for m in flat[nonempty]] if nonempty.sum() > 1 else []
    base = random_pairs_baseline(maps)
    return {
        "n": int(len(maps)),
        "n_empty": int((~nonempty).sum()),
        "top_peaks": peaks.most_common(3),
        "pairs_spearman": base["spearman"],
        "pairs_ssim": base["ssim"],
        "median_corr_with_mean": float(np.median(corr)) if corr else None,
        "mean_map": mean,
    }


def fmt(s: dict) -> str:
    peaks = ", ".join(f"{p} x{n}" for p, n in s["top_peaks"])
    f = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    return (
        f"peaks (top-left px of the cell) {peaks}; {s['n_empty']} empty; random pairs |Spearman| "
        f"{f(s['pairs_spearman'])}, SSIM {f(s['pairs_ssim'])}; median corr with mean map {f(s['median_corr_with_mean'])}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--method", default="hirescam")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    torch.manual_seed(0)
    trained = open_explained(args.run, "cpu")
    model = trained.model.eval()
    sel = select_items(trained, split="test", limit=args.n)
    x = model_inputs([it.image for it in sel.items], trained.preprocess, torch.device("cpu"))
    idx = [it.index for it in sel.items]
    size = x.shape[-1]
    out: dict = {"run": args.run, "n": len(x), "size": size}

    layer, maps = maps_of(model, x, idx, args.method, None)
    cell = size // 7 if size >= 7 else 1
    s = summary(maps, cell)
    print(f"## 1. {args.method} at {layer}, trained, {len(x)} test items")
    print(fmt(s))
    out["trained"] = {k: v for k, v in s.items() if k != "mean_map"}

    print("\n## 2. the same cell without the trained weights or without the image")
    untrained = copy.deepcopy(model)
    for _, modules in parameter_blocks(untrained):
        randomise_(modules, seed=1)
    untrained.eval()
    probe = {
        "untrained network, same images": maps_of(untrained, x, idx, args.method, layer)[1],
        "trained network, constant image (the mean input)": maps_of(
            model, torch.full_like(x, float(x.mean())), idx, args.method, layer
        )[1],
        "trained network, Gaussian noise images": maps_of(
            model, torch.randn_like(x) * x.std() + x.mean(), idx, args.method, layer
        )[1],
    }
    out["probes"] = {}
    for name, m in probe.items():
        ps = summary(m, cell)
        rho = float(np.corrcoef(ps["mean_map"], s["mean_map"])[0, 1])
        print(f"- {name}: {fmt(ps)}; its mean map vs the trained mean map: r = {rho:.2f}")
        out["probes"][name] = {k: v for k, v in ps.items() if k != "mean_map"} | {"r_mean_maps": rho}

    print("\n## 3. occluding the hot cell (replaced by the image mean) vs a random cell")
    rng = np.random.default_rng(0)

    def prob(batch):
        with torch.no_grad():
            pr = model.probabilities(model(batch)).numpy()
        return pr[np.arange(len(batch)), idx]

    base = prob(x)
    hot, rand = x.clone(), x.clone()
    for i, m in enumerate(maps):
        r, c = np.unravel_index(int(np.argmax(m)), m.shape)
        r0, c0 = int(r) // cell * cell, int(c) // cell * cell
        hot[i, :, r0 : r0 + cell, c0 : c0 + cell] = x[i].mean()
        rr, cc = rng.integers(0, size // cell, 2) * cell
        rand[i, :, rr : rr + cell, cc : cc + cell] = x[i].mean()
    d_hot, d_rand = np.abs(prob(hot) - base), np.abs(prob(rand) - base)
    print(
        f"mean |change of the probability| hot cell {d_hot.mean():.4f} (max {d_hot.max():.4f}), random cell "
        f"{d_rand.mean():.4f} (max {d_rand.max():.4f}); probabilities explained: median {np.median(base):.3f}"
    )
    out["occlusion"] = {"hot": float(d_hot.mean()), "random": float(d_rand.mean())}

    print("\n## 4. each block re-initialised alone (PyTorch init): its output change and the maps' change")
    out["blocks"] = {}
    for i, (name, modules) in enumerate(parameter_blocks(model)):
        net = copy.deepcopy(model)
        names = {id(m): n for n, m in model.named_modules()}
        copies = dict(net.named_modules())
        randomise_([copies[names[id(m)]] for m in modules], seed=i + 1, own_only=name.endswith("<own>"))
        net.eval()
        change = block_output_change(model, net, [names[id(m)] for m in modules], x)
        rmaps = maps_of(net, x, idx, args.method, layer)[1]
        sim = map_similarity(maps, rmaps)
        rho = float(np.nanmean(sim["spearman"]))
        net2 = copy.deepcopy(model)
        copies2 = dict(net2.named_modules())
        redraw_at_trained_scale_([copies2[names[id(m)]] for m in modules], seed=i + 1)
        net2.eval()
        change2 = block_output_change(model, net2, [names[id(m)] for m in modules], x)
        rho2 = float(
            np.nanmean(map_similarity(maps, maps_of(net2, x, idx, args.method, layer)[1])["spearman"])
        )
        pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        print(
            f"- {name}: PyTorch init: block output changes by {pct(change)}, maps' mean |Spearman| to trained "
            f"{rho:.2f}; trained-scale redraw: {pct(change2)}, {rho2:.2f}"
        )
        share = residual_share(model, [names[id(m)] for m in modules], x)
        print(f"  the trained block's output differs from its input by {pct(share)}")
        out["blocks"][name] = {
            "output_change": change,
            "spearman": rho,
            "trained_scale": [change2, rho2],
            "residual_share": share,
        }

    print("\n## 5. random-pairs baseline of every method at every layer (trained network)")
    out["layers"] = {}
    for method in ("hirescam", "gradcam", "layercam"):
        for lay in ("backbone.bn1", "backbone.layer1.0", "backbone.layer1.1", "backbone.layer2.1"):
            m = maps_of(model, x, idx, method, lay)[1]
            ls = summary(m, max(1, size // m.shape[-1]))
            print(f"- {method} @ {lay}: {fmt(ls)}")
            out["layers"][f"{method}@{lay}"] = {k: v for k, v in ls.items() if k != "mean_map"}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()

"""Arun et al.'s randomisation and repeatability criteria of one run's maps, per (method, layer).

Usage::

    .venv/bin/python benchmarks/trust_criteria.py RUN [--seeds RUN ...] [--pairs hirescam:layer1.1 ...]
        [--limit 32] [--sanity 16]

For each ``method:layer`` (``:`` alone = the method's automatic layer) on the first ``--limit`` test
items of RUN (explain's items: the run's top finding without ground truth): the random-pairs baseline
(mean SSIM and |Spearman| of 50 pairs of maps of different images), the image-independence sentence
when it applies, the cascading randomisation on the first ``--sanity`` items against that baseline
(:func:`chestxai.scorecard.trust.randomisation_block`) and, with ``--seeds``, the repeatability SSIM
of the same items' maps between RUN and those runs (:func:`chestxai.scorecard.trust.agreement_block`).
A quick look without the whole scorecard (``chestxai scorecard`` computes all of it with CIs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chestxai.evaluation.cost import torch_threads
from chestxai.explain.explainer import Explainer
from chestxai.explain.map_agreement import image_independence, random_pairs_baseline
from chestxai.explain.measure import model_inputs
from chestxai.explain.run import open_explained, select_items
from chestxai.scorecard.maps import MapSet
from chestxai.scorecard.trust import agreement_block, randomisation_block

DEFAULT_PAIRS = (
    "hirescam:layer1.1",
    "hirescam:layer2",
    "hirescam:layer3",
    "gradcam:layer2",
    "gradcam:layer4",
)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _mapset(name, method, layer, model, x, indices, ids) -> MapSet:
    maps = Explainer(model, method, layer=layer).explain(x, indices)
    n = len(ids)
    return MapSet(name, method, layer or "auto", "test", ids, ["top"] * n, ids, maps, np.zeros(n), [None] * n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--seeds", nargs="*", default=[], help="runs of the same recipe with other seeds")
    ap.add_argument("--pairs", nargs="*", default=list(DEFAULT_PAIRS), help="method:layer")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--sanity", type=int, default=16)
    args = ap.parse_args()
    runs = [open_explained(r, "cpu") for r in [args.run, *args.seeds]]
    items = select_items(runs[0], split="test", limit=args.limit).items
    x = model_inputs([it.image for it in items], runs[0].preprocess, "cpu")
    indices = [it.index for it in items]
    ids = [f"item{k}" for k in range(len(items))]  # the same items for every run
    for pair in args.pairs:
        method, _, layer = pair.partition(":")
        layer = layer or None
        start = time.perf_counter()
        sets = [_mapset(f"run{k}", method, layer, r.model, x, indices, ids) for k, r in enumerate(runs)]
        base = random_pairs_baseline(sets[0].maps)
        rnd = randomisation_block(
            runs[0].model, x[: args.sanity], indices[: args.sanity], method, layer, baseline=base
        )
        print(f"{method} at {rnd['layer']} ({len(ids)} items, randomisation on {rnd['n_images']})")
        print(f"  random pairs: SSIM {_f(base['ssim'])}, |Spearman| {_f(base['spearman'])}")
        if base["spearman"] is None:
            print("  no comparable pair of maps (every map empty, or fewer than two)")
        else:
            print(f"  {image_independence(base, method) or 'maps differ from image to image'}")
        print(f"  randomisation: final SSIM {_f(rnd['final_ssim'])}, pass {rnd['pass']}: {rnd['verdict']}")
        if len(sets) > 1:
            rep = agreement_block(sets[0], sets[1:], base, "repeatability")
            print(
                f"  repeatability: SSIM {_f(rep['ssim'])} over {rep['n_items']} items, pass {rep['pass']}: {rep['verdict']}"
            )
        print(f"  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    with torch_threads(1):  # one thread: the shared 2-core machine, seeded results identical
        main()

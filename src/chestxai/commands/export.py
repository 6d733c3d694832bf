"""``chestxai export``: a run's forward pass as ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags

EPILOG = """\
examples:
  chestxai export runs/quickstart                       # -> runs/quickstart/export/model.onnx
  chestxai export runs/nih-d121 --out nih.onnx --parity-images a.png b.dcm

The graph takes decoded images resized to the run's cache size, divided by 255 (N x 1 x S x S,
dynamic batch), and returns probabilities; preprocessing, label names, thresholds and the opset
are in the ONNX metadata. The parity check (max abs difference of probabilities, ONNX Runtime vs
PyTorch, on real images: the run's cached test images or --parity-images) must be <= 1e-4; it is
printed and saved beside the model as <name>.parity.json (runs/quickstart/export/model.parity.json).
Heatmaps and MC dropout need gradients / dropout at inference and stay on the PyTorch path.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a run to ONNX (forward only) with a PyTorch parity check",
        description="Export RUN/checkpoint.pt to ONNX.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run directory holding checkpoint.pt")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default onnx)")
    p.add_argument("--out", default=None, help="output file (default RUN/export/model.onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument(
        "--parity-images", nargs="+", default=None, metavar="FILE", help="images for the parity check"
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="replace an output this command did not write",
    )
    add_common_flags(p, device=False)  # --progress/--no-progress like every command (it draws no bar)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.export.onnx import OPSET, PARITY_TOLERANCE, export_run
    from chestxai.rundir import parity_file
    from chestxai.rundir.guard import refuse_while_training

    refuse_while_training(args.run, "export it")
    opset = args.opset or OPSET
    if not 13 <= opset <= 21:
        raise ValueError(f"--opset {opset}: use an opset in [13, 21] (default {OPSET})")
    result = export_run(args.run, args.out, images=args.parity_images, opset=opset, force=args.force)
    print(
        f"wrote {result.path} (opset {result.opset}, dynamic batch)\n"
        f"parity vs PyTorch on {result.parity_source}: max abs diff of probabilities "
        f"{result.max_abs_diff:.2e} (<= {PARITY_TOLERANCE:g}: ok), saved in {parity_file(result.path)}"
    )
    return 0

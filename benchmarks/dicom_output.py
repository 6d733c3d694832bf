"""Per-image cost of ``predict --dicom-out`` (read, predict, explain, write SR + Parametric Map)
against ``predict`` alone and ``predict --explain`` (the CSV/PNG path it builds on).

The inputs are ``--images`` copies of the real SIIM CR in ``$CHESTXAI_DATA/dicom`` (1024 x 1024,
JPEG baseline; every path decodes it), scored by ``--run`` or, without one, an untrained seeded
ResNet-18 with 14 NIH labels at ``--size`` px (the cost does not depend on the weights). Each mode
runs ``--repeats`` times after one warm-up; the median is reported, with the DICOM writer's own
share (SR + map built and written, timed inside the run).

    CHESTXAI_DATA=../shared/data .venv/bin/python benchmarks/dicom_output.py
    .venv/bin/python benchmarks/dicom_output.py --run runs/quickstart --images 10 --repeats 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from chestxai.paths import shared_data_root

SOURCE = "dicom/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def _run(work: Path, size: int) -> Path:
    from chestxai.labels import NIH14
    from chestxai.testing import write_tiny_run

    run, _ = write_tiny_run(work / "tiny", task="multilabel", n_labels=len(NIH14), size=size, n=24)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None, help="run directory (default: an untrained seeded ResNet-18)")
    ap.add_argument("--size", type=int, default=224, help="input size of the default run (default 224)")
    ap.add_argument("--images", type=int, default=20, help="copies of the real CR to score (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per mode (default 3)")
    args = ap.parse_args()

    import chestxai.dicomout
    from chestxai.serve.models import load_served
    from chestxai.serve.predict_files import PredictOptions, predict_files

    source = shared_data_root() / SOURCE
    if not source.is_file():
        raise SystemExit(f"{source} is absent: set CHESTXAI_DATA to the shared data folder")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = []
        for i in range(args.images):
            paths.append(work / "in" / f"x{i:03d}.dcm")
            paths[-1].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, paths[-1])
        scorer = load_served(args.run or _run(work, args.size))
        writer_s: list[float] = []
        real = chestxai.dicomout.write_results

        def timed_write(*a, **kw):
            start = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                writer_s.append(time.perf_counter() - start)

        chestxai.dicomout.write_results = timed_write  # the writer's own share, inside the same runs
        modes = {
            "predict": lambda out: PredictOptions(progress=False),
            "predict --explain gradcam": lambda out: PredictOptions(progress=False, explain="gradcam"),
            "predict --dicom-out": lambda out: PredictOptions(progress=False, dicom_out=out / "dicom"),
        }
        print(f"{args.images} x {source.name} (1024 x 1024 JPEG CR), {scorer.description}, "
              f"input {scorer.preprocess['size']} px, median of {args.repeats}")  # fmt: skip
        base = None
        for name, make in modes.items():
            times = []
            for r in range(args.repeats + 1):  # the first is the warm-up
                out = work / f"{name.split()[-1]}-{r}"
                writer_s.clear()
                start = time.perf_counter()
                predict_files(scorer, paths, out / "p.csv", make(out))
                if r:
                    times.append(time.perf_counter() - start)
            per_image = statistics.median(times) / args.images * 1000
            base = base or per_image
            note = f"  (writer {sum(writer_s) / args.images * 1000:.1f} ms/img)" if writer_s else ""
            print(f"  {name:28s} {per_image:8.1f} ms/img  x{per_image / base:.2f}{note}")


if __name__ == "__main__":
    main()

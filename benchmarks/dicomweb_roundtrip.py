"""Orthanc round trip for N instances: ``chestxai dicomweb RUN --study UID --store`` end to end.

1. starts Debian's Orthanc with its DICOMweb plugin on a free loopback port (config and storage in a
   temporary folder, no DICOM port);
2. derives N instances from the real SIIM DICOM of ``../shared/data/dicom`` (JPEG baseline, 1024 px):
   one new study, one new series, N new SOP Instance UIDs, pixels unchanged; stores them (STOW-RS);
3. runs ``chestxai dicomweb RUN --url ... --study UID --store`` as a user would (its own process:
   start-up and model load included) and times it: query, N retrieves (decompressed by Orthanc),
   predict + Grad-CAM + SR + Parametric Map per image, 2N STOW-RS requests;
4. reads the ledger (OUT/dicomweb.csv) for the failures and checks through QIDO that the study now
   holds N + 2N instances.

    python benchmarks/dicomweb_roundtrip.py [--n 20] [--run RUN] [--size 224]

Without ``--run`` the model is an untrained NIH-14 ResNet-18 at ``--size`` px made by
``chestxai.testing.write_tiny_run`` (weights do not change the cost).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def derive(source: Path, n: int, folder: Path) -> tuple[str, list[Path]]:
    import pydicom
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    paths = []
    for k in range(n):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = "derived by benchmarks/dicomweb_roundtrip.py (new UIDs)"
        paths.append(folder / f"{k:03d}.dcm")
        ds.save_as(paths[-1])
    return study, paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="instances (default 20)")
    parser.add_argument("--run", default=None, help="run directory (default: a tiny NIH-14 ResNet-18)")
    parser.add_argument("--size", type=int, default=224, help="input size of the tiny run (default 224)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from chestxai.dicomweb.connection import Server, ServerSettings
    from chestxai.dicomweb.transfer import store
    from chestxai.paths import shared_data_root
    from chestxai.testing_orthanc import missing_reason, orthanc_server

    if missing_reason():
        raise SystemExit(missing_reason())
    source = shared_data_root() / "dicom" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as tmp:
        tmp = Path(tmp)
        run = args.run
        if run is None:
            from chestxai.testing import write_tiny_run

            run = str(write_tiny_run(tmp / "tiny", task="multilabel", n_labels=14, size=args.size)[0])
        with orthanc_server(tmp, name="chestxai-bench") as orthanc:  # stopped when the block ends
            url = orthanc.dicomweb
            study, paths = derive(source, args.n, tmp)
            server = Server(ServerSettings(url, retries=0))
            t0 = time.perf_counter()
            assert all(store(server, p).stored for p in paths)
            t_upload = time.perf_counter() - t0
            out = tmp / "out"
            cmd = [sys.executable, "-m", "chestxai", "dicomweb", run, "--url", url, "--study", study]
            cmd += ["--store", "--out", str(out), "--no-progress", "--device", "cpu"]
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            with open(out / "dicomweb.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            held = len(server.client.search_for_instances(study, get_remaining=True))
    counts = Counter((r["step"], r["status"]) for r in rows)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; run: {run}")
    print(f"upload of the {args.n} sources (STOW, setup): {t_upload:.2f} s")
    print(
        f"chestxai dicomweb --store, end to end: {seconds:.2f} s ({seconds / args.n:.2f} s per instance), exit {done.returncode}"
    )
    print("ledger:", dict(sorted(counts.items())))
    table = done.stdout[done.stdout.index("step ") :].splitlines()[:5] if "step " in done.stdout else []
    print("\n".join(["the command's summary (seconds per step; predict includes the model load):", *table]))
    print(
        f"failures: {sum(r['status'] == 'failed' for r in rows)}; instances in the study now: {held} (expected {3 * args.n})"
    )
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:])


if __name__ == "__main__":
    main()

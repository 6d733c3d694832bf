"""``chestxai serve``: the HTTP API and web viewer for one or more trained runs."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from chestxai.commands._common import add_common_flags

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  chestxai serve runs/quickstart                     # then open http://127.0.0.1:8000/
  chestxai serve runs/nih-d121 runs/pmnist --port 8080 --max-upload-mb 50
  curl -F file=@xray.png 'http://127.0.0.1:8000/v1/predict?explain=gradcam'

Endpoints: POST /v1/predict (multipart field `file`: PNG, JPEG or DICOM; query explain=METHOD,
label=NAME, uncertainty=mc-dropout|tta, model=NAME, display=true), GET /v1/models, GET /healthz,
OpenAPI docs at /docs, the viewer at /. Binds to loopback unless --host says otherwise. Models
load once at start-up (weights-only checkpoints); the run directories are only read. Uploads are
streamed into a temporary folder that is removed at shutdown. Needs the [serve] extra.
Research software, not for clinical use.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="HTTP API + web viewer for trained runs (FastAPI + uvicorn)",
        description="Serve RUN [RUN...] over HTTP: predictions, heatmaps, boxes, uncertainty.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (each holding checkpoint.pt)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25)")
    p.add_argument("--max-pixels", type=int, default=None, help="decompression-bomb guard (decoder default)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request before 504 (default 60)")
    p.add_argument("--max-batch", type=int, default=32, help="requests merged into one forward (default 32)")
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests before 503 (default 256)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="wait for a batch to fill (default 2 ms)")
    add_common_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.data.decode import DEFAULT_MAX_PIXELS
    from chestxai.serve.limits import MB, Limits

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number (0-65535)")
    from chestxai.rundir.guard import refuse_while_training

    for run_dir in args.runs:
        refuse_while_training(run_dir, "serve it")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * MB),
        timeout_s=args.timeout,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        max_queue=args.max_queue,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    try:
        import uvicorn
    except ImportError:
        raise ValueError("chestxai serve needs the [serve] extra: pip install 'chestxai[serve]'") from None
    from chestxai.devices import pick_device
    from chestxai.serve.app import create_app
    from chestxai.serve.models import load_all

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "binding to %s: the service is reachable from other machines; it has no authentication", args.host
        )
    models = load_all(args.runs, device=str(pick_device(args.device)))
    app = create_app(models, limits)
    print(f"serving {', '.join(models)} on http://{args.host}:{args.port}/ (docs at /docs); Ctrl-C stops")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

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
OpenAPI docs at /docs, the viewer at /. Binds to loopback unless --host says otherwise, and
answers only the Host names of --allowed-hosts (loopback names by default). --timeout covers the
whole request, receiving the upload included; a connection that has not sent its headers by then
is closed. Explain/uncertainty requests wait in a small queue of their own (--heavy-queue). Models
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
    p.add_argument(
        "--max-decode-mb",
        type=float,
        default=None,
        help="refuse images whose decoded samples (width x height x bands x bytes) need more (default 256)",
    )
    p.add_argument(
        "--max-decodes", type=int, default=2, help="uploads decoded at once; the rest wait (default 2)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds per request, from its first header byte to the answer, before 504 (default 60)",
    )
    p.add_argument("--max-batch", type=int, default=32, help="requests merged into one forward (default 32)")
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests before 503 (default 256)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="wait for a batch to fill (default 2 ms)")
    p.add_argument("--max-uploads", type=int, default=64, help="uploads in flight before 503 (default 64)")
    p.add_argument(
        "--max-temp-mb", type=float, default=256.0, help="upload bytes held at once before 503 (default 256)"
    )
    p.add_argument(
        "--max-connections", type=int, default=512, help="open connections before 503 (default 512)"
    )
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=5.0,
        help="on SIGTERM/Ctrl-C, seconds running requests get before they are cancelled (default 5)",
    )
    p.add_argument(
        "--max-passes",
        type=int,
        default=50,
        help="largest uncertainty passes= a request may ask (default 50)",
    )
    p.add_argument(
        "--heavy-queue",
        type=int,
        default=4,
        help="explain/uncertainty requests waiting per model before 503 (default 4)",
    )
    p.add_argument(
        "--allowed-hosts",
        nargs="+",
        default=None,
        metavar="NAME",
        help="Host header names answered, e.g. xray.example.org or '*' (default: localhost 127.0.0.1 ::1)",
    )
    add_common_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.data.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
    from chestxai.serve.limits import LOOPBACK_HOSTS, MB, Limits

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
        max_uploads=args.max_uploads,
        max_temp_bytes=int(args.max_temp_mb * MB),
        max_connections=args.max_connections,
        graceful_s=args.graceful_timeout,
        max_passes=args.max_passes,
        heavy_queue=args.heavy_queue,
        allowed_hosts=tuple(args.allowed_hosts or LOOPBACK_HOSTS),
        max_decode_bytes=DEFAULT_MAX_BYTES if args.max_decode_mb is None else int(args.max_decode_mb * MB),
        max_decodes=args.max_decodes,
    )
    try:
        import uvicorn
    except ImportError:
        raise ValueError("chestxai serve needs the [serve] extra: pip install 'chestxai[serve]'") from None
    from chestxai.devices import pick_device
    from chestxai.serve.app import create_app
    from chestxai.serve.deadline import header_timeout_protocol
    from chestxai.serve.hosts import binding_advice
    from chestxai.serve.models import load_all

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "binding to %s: the service is reachable from other machines; it has no authentication", args.host
        )
    advice = binding_advice(args.host, limits.allowed_hosts)
    if advice:
        log.warning(advice)
    models = load_all(args.runs, device=str(pick_device(args.device)))
    app = create_app(models, limits)
    print(f"serving {', '.join(models)} on http://{args.host}:{args.port}/ (docs at /docs); Ctrl-C stops")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        http=header_timeout_protocol(limits.timeout_s),  # headers get the same deadline
        limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=limits.graceful_s,
    )
    return 0

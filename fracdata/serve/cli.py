"""The `fracdata serve` command line: arguments, the host/token check, then the app (app.py) under
uvicorn with the header and body guards (guard.py)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from fracdata.errors import FracdataError

DEFAULT_OUT = "reports/serve"
TOKEN_ENV = "FRACDATA_SERVE_TOKEN"


def add_arguments(p) -> None:
    from fracdata import flags
    from fracdata.analyze.options import add_model_arguments

    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=flags.number(int, 0, 65535), default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=flags.positive, default=32.0,
                   help="largest request body in MB (default 32: a 16-bit 4k x 4k TIFF is ~32 MB)")
    p.add_argument("--read-timeout", type=flags.positive, default=30.0,
                   help="seconds a client may take to send its request headers or to pause in its body; the whole "
                        "body must also average 100 kB/s (default 30)")
    p.add_argument("--decode-memory-mb", type=flags.positive, default=1000.0,
                   help="memory image decoding may hold at once, estimated from each header (default 1000: two "
                        "50-Mpx RGB images, or one with alpha); larger uploads wait their turn")
    p.add_argument("--max-queue", type=flags.count, default=64,
                   help="POST /analyze requests inside at once (read, waiting or analysed); one more gets 503 "
                        "with Retry-After at once (default 64)")
    p.add_argument("--token-env", default=TOKEN_ENV,
                   help=f"variable holding the bearer token POST /analyze requires (default {TOKEN_ENV}; unset = none)")
    p.add_argument("--allow-no-token", action="store_true", help="allow a non-loopback --host without a token")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"write each analysis here (json/md/png) and append analyses.jsonl (default {DEFAULT_OUT})")
    add_model_arguments(p)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    import uvicorn

    from fracdata.analyze.options import build_analyzer
    from fracdata.serve.app import create_app

    token = os.environ.get(args.token_env)
    if not _loopback(args.host) and not token and not args.allow_no_token:
        raise FracdataError(f"--host {args.host} is reachable from other machines and {args.token_env} is not set: "
                            f"set {args.token_env} (clients send it as a bearer token) or pass --allow-no-token")
    from fracdata.analyze.pipeline import MemoryBudget
    from fracdata.serve.guard import guarded_protocol

    analyzer = build_analyzer(args)
    analyzer.memory = MemoryBudget(int(args.decode_memory_mb * 1e6))
    app = create_app(analyzer, int(args.max_upload_mb * 1e6), args.token_env, Path(args.out), args.read_timeout,
                     args.max_queue)
    # timeout_keep_alive: an idle connection after a response; the header deadline: one that
    # trickles its next request (guard.py)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            http=guarded_protocol(args.read_timeout), timeout_keep_alive=5)
    server = uvicorn.Server(config)
    # uvicorn says where it listens only at info level; print it ourselves once bound (port 0 included).
    orig = server.startup

    async def startup(sockets=None):
        await orig(sockets)
        for s in server.servers:
            for sock in s.sockets:
                host, port = sock.getsockname()[:2]
                print(f"serving http://{host}:{port}/ (POST /analyze, GET /healthz, /openapi.json); token "
                      f"{'required' if token else 'not required'}; uploads up to {args.max_upload_mb:g} MB; "
                      f"queue up to {args.max_queue} (then 503); writing to {args.out}/", flush=True)

    server.startup = startup
    server.run()
    return 0

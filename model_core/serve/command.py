"""`python -m model_core serve`: check the options, load the model, run one process or Ray Serve."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from ..errors import ModelError
from ..settings import SERVER_BATCH
from .client import TOKEN_ENV
from .options import ServeOptions, load_engine


def add_parser(commands) -> None:
    serve = commands.add_parser("serve", help="HTTP JSON API for generation and editing (one process or Ray)",
                                description="Serve the model over HTTP: GET /v1/health, POST /v1/generate, "
                                "POST /v1/edit; the OpenAPI description is at /docs and /openapi.json.")
    serve.add_argument("--checkpoints", required=True, help="the official checkpoints/ folder (holding t2m/)")
    serve.add_argument("--clip", required=True, help="OpenAI's ViT-B-32.pt (or a plain CLIP state dict)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; anything but loopback needs a token")
    serve.add_argument("--port", type=int, default=8790)
    serve.add_argument("--token", default=None,
                       help=f"clients must send 'Authorization: Bearer TOKEN' (or set {TOKEN_ENV}, which keeps it "
                       "out of the process list)")
    serve.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    serve.add_argument("--max-batch", type=int, default=SERVER_BATCH,
                       help="requests that may share one model call (1: no batching)")
    serve.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of one process")
    serve.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (each loads the model)")
    serve.add_argument("--address", default=None,
                       help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: a local one")
    serve.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere counts as reachable from outside


def check_options(args: argparse.Namespace) -> str | None:
    """The token to use; refuses to expose the model beyond loopback without one."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        raise ModelError(f"refusing to listen on {args.host} without a token: anyone who can reach it could use "
                         f"the model; pass --token (or set {TOKEN_ENV}), or listen on 127.0.0.1")
    if not 0 < args.port < 65536:
        raise ModelError(f"--port must be 1-65535, got {args.port}")
    if args.max_batch < 1 or args.replicas < 1:
        raise ModelError("--max-batch and --replicas must be at least 1")
    if (args.replicas != 1 or args.address) and not args.ray:
        raise ModelError("--replicas and --address are for --ray")
    return token


def run(args: argparse.Namespace) -> int:
    token = check_options(args)
    options = ServeOptions(checkpoints=args.checkpoints, clip=args.clip, device=args.device, token=token,
                           max_batch=args.max_batch)
    if args.ray:
        from .ray_app import serve_on_ray

        return serve_on_ray(options, host=args.host, port=args.port, replicas=args.replicas, address=args.address)
    from .local import serve

    engine = load_engine(options)
    print(f"model loaded on {engine.model.device}; serving on http://{args.host}:{args.port} "
          f"({'token required' if token else 'no token: loopback only'})", file=sys.stderr, flush=True)
    serve(engine, args.host, args.port, token, max_batch=args.max_batch)
    return 0

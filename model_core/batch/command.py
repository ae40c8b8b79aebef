"""`python -m model_core batch LIST --out DIR [--server URL]`: the command line of a batch job."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import ModelError
from ..serve.client import TOKEN_ENV
from ..settings import GenerationSettings

DEFAULTS = GenerationSettings()


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "batch", help="many prompts to .npz (and .bvh) files, resumable",
        description="Lines of seconds<TAB>prompt[<TAB>seed] (seconds may be 'auto'; # comments and blank lines "
        "skipped) become one .npz each in --out (and .bvh with --bvh). Finished items are skipped on a rerun; "
        "failed ones are listed in OUT/failed.tsv, which can be run again. Exit status 1 when some failed.")
    batch.add_argument("list", help="the prompt list (.tsv)")
    batch.add_argument("--out", required=True, help="output folder")
    batch.add_argument("--bvh", action="store_true", help="also write a .bvh per item")
    batch.add_argument("--server", default=None, help="a model server (http://host:8790) instead of a local model")
    batch.add_argument("--token", default=None, help=f"the server's token (or set {TOKEN_ENV})")
    batch.add_argument("--concurrency", type=int, default=8, help="requests in flight to the server")
    batch.add_argument("--batch-size", type=int, default=16, help="items per local model call")
    batch.add_argument("--seed", type=int, default=0, help="seed of lines that give none")
    batch.add_argument("--steps", type=int, default=DEFAULTS.steps)
    batch.add_argument("--guidance", type=float, default=DEFAULTS.guidance)
    batch.add_argument("--residual-guidance", type=float, default=DEFAULTS.residual_guidance)
    batch.add_argument("--temperature", type=float, default=DEFAULTS.temperature)
    batch.add_argument("--topk", type=float, default=DEFAULTS.topk)
    batch.add_argument("--checkpoints", default="", help="the official checkpoints/ folder (without --server)")
    batch.add_argument("--clip", default="", help="OpenAI's ViT-B-32.pt (without --server)")
    batch.add_argument("--device", default="cpu", help="cpu, cuda or auto (without --server)")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .items import parse_list
    from .runner import LocalProducer, RemoteProducer, run_batch, summary_json

    settings = GenerationSettings(steps=args.steps, guidance=args.guidance, residual_guidance=args.residual_guidance,
                                  temperature=args.temperature, topk=args.topk)
    settings.validate()
    try:
        text = Path(args.list).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"cannot read the prompt list {args.list}: {err}") from err
    items, bad = parse_list(text, args.seed)
    if not items and not bad:
        raise ModelError(f"{args.list} holds no seconds<TAB>prompt line")
    if args.server:
        from ..serve.client import Client

        client = Client(args.server, args.token or os.environ.get(TOKEN_ENV))
        client.health()  # unreachable or refusing: say so now, not once per item
        produce = RemoteProducer(client, settings, args.concurrency)
    else:
        if not args.checkpoints or not args.clip:
            raise ModelError("give --checkpoints and --clip, or --server URL")
        from ..generation.pipeline import MoMask

        produce = LocalProducer(MoMask.load(args.checkpoints, args.clip, device=args.device), settings,
                                args.batch_size)
    out = Path(args.out)
    summary = run_batch(items, out, produce, settings, bvh=args.bvh, bad_lines=bad)
    print(json.dumps(summary_json(summary, out)))
    return 1 if summary.failed else 0

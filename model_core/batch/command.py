"""`python -m model_core batch LIST --out DIR [--server URL]`: the command line of a batch job."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import ModelError
from ..flags import add_model_flags, add_sampling_flags, settings_from_args
from ..inputs.text import read_text
from ..serve.client import TOKEN_ENV


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
    add_sampling_flags(batch)
    add_model_flags(batch, required=False, note="(without --server)")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .items import parse_list
    from .runner import LocalProducer, RemoteProducer, run_batch, summary_json

    settings = settings_from_args(args)
    settings.validate()
    text = read_text(args.list, "prompt list")
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

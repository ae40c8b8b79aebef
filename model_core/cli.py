"""Command line: `python -m model_core generate|replay|serve|batch ...`."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .batch.command import add_parser as add_batch_parser
from .errors import ModelError
from .flags import add_generation_flags, settings_from_args
from .inputs.paths import check_output_file, write_npz
from .inputs.text import read_text
from .serve.command import add_parser as add_serve_parser


def _generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from .control import read_constraints
    from .generation.pipeline import MoMask
    from .generation.requests import parse_sequence
    from .generation.timeline import generate_sequence

    if (args.prompt is None) == (args.sequence is None):
        raise ModelError("give a prompt or --sequence FILE (lines of seconds<TAB>prompt), not both")
    out = check_output_file(args.out, "--out file")  # before minutes of work, not after
    segments = parse_sequence(read_text(args.sequence, "sequence file")) if args.sequence else None
    constraints = read_constraints(args.constraints) if args.constraints else None
    settings = settings_from_args(args)
    settings.validate()
    model = MoMask.load(args.checkpoints, args.clip, device=args.device)
    loaded = time.perf_counter()
    progress = _progress_printer()
    if segments is not None:
        motion = generate_sequence(model, segments, seed=args.seed, variations=args.variations,
                                   settings=settings, constraints=constraints, progress=progress)
    else:
        motion = model.generate(args.prompt, args.seconds, seed=args.seed, variations=args.variations,
                                settings=settings, constraints=constraints, progress=progress)
    done = time.perf_counter()
    frames = max(motion.lengths)
    write_npz(out, dict(joints=motion.joints[:, :frames], features=motion.features[:, :frames],
                        tokens=motion.tokens, lengths=np.asarray(motion.lengths), fps=np.asarray(motion.fps)),
              "--out file")
    print(json.dumps({"out": str(out), "frames": motion.lengths, "fps": motion.fps, "seams": motion.seams,
                      "load_s": round(loaded - started, 3), "generate_s": round(done - loaded, 3)}))
    return 0


def _progress_printer(first_after: float = 2.0, every: float = 5.0):
    """A progress callback that prints a line to stderr now and then, once a run takes a while."""
    started = time.monotonic()
    last = [started + first_after - every]

    def report(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            print(f"{stage}: {fraction:.0%} ({now - started:.0f} s)", file=sys.stderr, flush=True)

    return report


def _replay(args: argparse.Namespace) -> int:
    from .replay import replay

    out = check_output_file(args.out, "--out file")
    outputs = replay(args.ref_dir, device=args.device)
    write_npz(out, outputs, "--out file")
    print(json.dumps({"out": str(out), "arrays": len(outputs)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="text → motion (.npz with joints and features)")
    generate.add_argument("prompt", nargs="?", help="what the motion shows (or use --sequence)")
    generate.add_argument("--sequence", help="a prompt sequence: lines of seconds<TAB>prompt")
    generate.add_argument("--constraints", help="a JSON file of joint targets the motion meets "
                          '({"constraints": [{"frame": 40, "joint": "left_wrist", "position": [x, y, z]}, ...]})')
    generate.add_argument("--out", required=True, help="output .npz")
    add_generation_flags(generate)
    generate.set_defaults(run=_generate)
    replay = commands.add_parser("replay", help="recompute a reference folder's outputs from its inputs")
    replay.add_argument("ref_dir")
    replay.add_argument("--out", required=True)
    replay.add_argument("--device", default="cpu")
    replay.set_defaults(run=_replay)
    add_serve_parser(commands)
    add_batch_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory: ask for fewer or shorter motions, or use a machine with more memory",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

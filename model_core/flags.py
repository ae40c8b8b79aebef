"""The generation flags every command line takes, and the settings they give.

`python -m model_core generate`, `python -m model_core batch` and `python -m momask_blender.bake`
add them here, so the three have the same names, defaults and help, and a new setting reaches
all of them at once. Below `cli` and `batch` (which `cli` imports), NumPy-free and torch-free.
"""
from __future__ import annotations

import argparse

from .settings import FPS, FRAMES_PER_TOKEN, MAX_FRAMES, GenerationSettings

DEFAULTS = GenerationSettings()


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `GenerationSettings` field, with the official defaults."""
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="remasking iterations")
    parser.add_argument("--guidance", type=float, default=DEFAULTS.guidance,
                        help="classifier-free guidance of the masked transformer")
    parser.add_argument("--residual-guidance", type=float, default=DEFAULTS.residual_guidance,
                        help="guidance of the residual transformer")
    parser.add_argument("--temperature", type=float, default=DEFAULTS.temperature,
                        help="sampling temperature of the masked transformer")
    parser.add_argument("--residual-temperature", type=float, default=DEFAULTS.residual_temperature,
                        help="sampling temperature of the residual transformer")
    parser.add_argument("--topk", type=float, default=DEFAULTS.topk, help="keep the top (1 - topk) share of logits")


def add_model_flags(parser: argparse.ArgumentParser, *, required: bool = True, note: str = "") -> None:
    """Where the model's files are and where it runs; `note` ends each help (e.g. "(without --server)")."""
    tail = f" {note}" if note else ""
    parser.add_argument("--checkpoints", required=required, default="",
                        help=f"the official checkpoints/ folder (holding t2m/){tail}")
    parser.add_argument("--clip", required=required, default="",
                        help=f"OpenAI's ViT-B-32.pt (or a plain CLIP state dict){tail}")
    parser.add_argument("--device", default="cpu", help=f"cpu, cuda or auto{tail}")


def add_generation_flags(parser: argparse.ArgumentParser, *, model_required: bool = True) -> None:
    """Length, seed, variations, the sampling settings and the model's files.

    `model_required=False` lets a caller that can run without the model (baking an existing
    motion) leave --checkpoints and --clip empty."""
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"length in seconds ({FPS} fps, whole {FRAMES_PER_TOKEN}-frame tokens; past "
                        f"{MAX_FRAMES / FPS:g} s made window by window); default: the length estimator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variations", type=int, default=1)
    add_sampling_flags(parser)
    add_model_flags(parser, required=model_required)


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    """The settings the parsed flags give (not yet validated: `validate()` names a bad one)."""
    return GenerationSettings.from_mapping(vars(args))

"""Many independent requests in one model call: each sample keeps its own prompt, length and seed.

A server gathers requests that arrive together, and a batch job gathers the lines of its list,
into one pass of the networks: the transformers run the whole batch at once (padding masked),
and each sample draws from its own `torch.Generator`, so its tokens are those it would get alone.
Each sample is then decoded on its own, so its joints do not depend, even in the last bit, on
what shared its call.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..settings import GenerationSettings
from .model import TokenModel
from .requests import DECODE, DONE, LENGTH, TEXT, Motion, Progress, check_prompts, frames_to_tokens, report


@dataclass(frozen=True)
class Sample:
    """One motion to make: what it shows, how long (None: the length estimator), its seed."""
    prompt: str
    frames: int | None
    seed: int


def generate_batched(model: TokenModel, samples: Sequence[Sample], settings: GenerationSettings | None = None,
                     progress: Progress | None = None) -> list[Motion]:
    """One Motion per sample (a batch of one), made in one model call; lengths up to one call's 196 frames.

    Sample k gets what `MoMask.generate(prompt, frames=..., seed=...)` gives it alone: the same
    tokens, and joints equal to float rounding (exactly equal whatever else is in the batch).
    """
    settings = settings or GenerationSettings()
    settings.validate()
    samples = list(samples)
    prompts = check_prompts([s.prompt for s in samples])
    unit = model.frames_per_token
    known = [None if s.frames is None else frames_to_tokens(s.frames, unit) for s in samples]
    generators = model.generators([s.seed for s in samples])

    report(progress, "text", TEXT)
    text = model.encode_text(prompts)
    unknown = [i for i, n in enumerate(known) if n is None]
    if unknown:  # only these rows draw a length from their streams, as they would alone
        report(progress, "length", LENGTH)
        estimated = model.estimate_tokens(text[unknown], [generators[i] for i in unknown])
        for i, n in zip(unknown, estimated, strict=True):
            known[i] = n
    lengths = [int(n) for n in known]

    ids = model.sample_tokens(text, lengths, settings, generators, progress)
    report(progress, "decode", DECODE)
    motions = [model.decode(ids[i:i + 1, :n], [n * unit], [prompt])
               for i, (n, prompt) in enumerate(zip(lengths, prompts, strict=True))]
    report(progress, "done", DONE)
    return motions

"""What a generation asks for and what comes back: prompts and lengths checked, a batch of motions.

Plain data and checks (NumPy only), shared by the model, the timeline edits and the callers.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..inputs.numbers import finite
from ..settings import (
    FPS,
    FRAMES_PER_TOKEN,
    MAX_FRAMES,
    MAX_LONG_SECONDS,
    MAX_PROMPT_CHARS,
    MAX_SEGMENTS,
    MAX_VARIATIONS,
)

Progress = Callable[[str, float], None]

# Where each stage of one model call starts, as the fraction `progress(stage, fraction)` reports; the
# base tokens' remasking steps fill the span up to the residual layers.
TEXT, LENGTH, BASE_TOKENS, RESIDUAL_LAYERS, DECODE, DONE = 0.0, 0.05, 0.1, 0.7, 0.9, 1.0


class Cancelled(Exception):
    """Raised by a progress callback to stop a generation between two model passes."""


@dataclass
class Motion:
    """A batch of motions. Arrays are padded to the longest sample; `lengths` gives each one's frames."""
    joints: np.ndarray          # (B, T, J, 3) metres, HumanML3D axes (Y up, starts facing +Z)
    features: np.ndarray        # (B, T, C) de-normalised HumanML3D features
    tokens: np.ndarray          # (B, T/4, Q) token ids, -1 past a sample's length
    lengths: list[int]          # frames of each sample
    prompts: list[str] = field(default_factory=list)
    fps: int = FPS
    seams: list[int] = field(default_factory=list)  # frames where a long motion's windows meet


@dataclass(frozen=True)
class Segment:
    """One row of a prompt sequence: what happens, for how long."""
    prompt: str
    frames: int


@dataclass
class Edited:
    """A motion with a token range regenerated; `frame_start`/`frame_end` (exclusive) are the
    frames the regenerated tokens cover (the asked range rounded outward to whole tokens)."""
    motion: Motion
    frame_start: int
    frame_end: int


def check_prompts(prompts: Sequence[str] | str) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ModelError("no prompt given")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ModelError(f"prompt {i} is empty: describe the motion in words")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ModelError(f"prompt {i} is {len(prompt):,} characters long, more than the {MAX_PROMPT_CHARS:,} "
                             f"allowed (it starts {prompt[:40]!r}…); CLIP reads about 60 words")
    return prompts


def check_variations(variations) -> int:
    if isinstance(variations, bool) or not isinstance(variations, (int, np.integer)) \
            or not 1 <= variations <= MAX_VARIATIONS:
        raise ModelError(f"variations must be a whole number from 1 to {MAX_VARIATIONS}, got {variations!r}")
    return int(variations)


def frames_to_tokens(frames: int, unit: int = FRAMES_PER_TOKEN) -> int:
    """Lengths are cut down to whole tokens; at least one token, at most one model call."""
    if not isinstance(frames, (int, np.integer)) or isinstance(frames, bool):
        raise ModelError(f"length must be a whole number of frames, got {frames!r}")
    if frames < unit:
        raise ModelError(f"length of {frames} frames ({frames / FPS:g} s) is too short: a motion lasts at least "
                         f"{unit} frames ({unit / FPS:g} s at {FPS} fps) and at most {MAX_LONG_SECONDS:g} s")
    if frames > MAX_FRAMES:
        raise ModelError(f"length of {frames} frames is out of range: one call makes {unit} to {MAX_FRAMES} "
                         f"frames ({unit / FPS:.1f} to {MAX_FRAMES / FPS:.1f} s at {FPS} fps); longer motions "
                         "are made window by window")
    return int(frames) // unit


def seconds_to_frames(seconds: float) -> int:
    """Frames at the model's rate for a positive length in seconds (whether one generation makes that
    many is `check_frames`'s question; a length no count can hold is refused here, naming the limit)."""
    finite(seconds, "seconds")
    if seconds <= 0:
        raise ModelError(f"length must be positive, got {seconds} s")
    if seconds * FPS > 1e9:
        raise ModelError(f"length of {seconds:g} s is longer than the {MAX_LONG_SECONDS:g} s one generation makes")
    return int(math.floor(seconds * FPS + 1e-6))


def check_frames(frames: int) -> int:
    """A motion's length in frames, at most what one generation makes (MAX_LONG_SECONDS)."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
        raise ModelError(f"length must be a whole number of frames, got {frames!r}")
    if frames > MAX_LONG_SECONDS * FPS:
        raise ModelError(f"length of {frames} frames ({frames / FPS:g} s) is longer than the {MAX_LONG_SECONDS:g} s "
                         f"({int(MAX_LONG_SECONDS * FPS)} frames) one generation makes")
    return int(frames)


def report(progress: Progress | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def report_step(progress: Progress | None, step: int, steps: int) -> None:
    """Remasking step `step` of `steps` done, within the base tokens' share of the call."""
    report(progress, "base tokens", BASE_TOKENS + (RESIDUAL_LAYERS - BASE_TOKENS) * step / steps)


def stack_motions(parts: Sequence[Motion]) -> Motion:
    """One batch from several, padded to the longest (tokens past a length are -1)."""
    frames = max(p.joints.shape[1] for p in parts)
    tokens = max(p.tokens.shape[1] for p in parts)

    def pad(a: np.ndarray, size: int, value: float = 0) -> np.ndarray:
        return np.pad(a, [(0, 0), (0, size - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=value)

    return Motion(joints=np.concatenate([pad(p.joints, frames) for p in parts]),
                  features=np.concatenate([pad(p.features, frames) for p in parts]),
                  tokens=np.concatenate([pad(p.tokens, tokens, -1) for p in parts]),
                  lengths=[n for p in parts for n in p.lengths], prompts=[t for p in parts for t in p.prompts],
                  fps=parts[0].fps, seams=parts[0].seams if len(parts) == 1 else [])


def per_prompt_frames(seconds, frames, count: int) -> list[int] | None:
    if seconds is not None and frames is not None:
        raise ModelError("give the length in seconds or in frames, not both")
    if seconds is None and frames is None:
        return None
    if frames is None:
        values = [seconds] * count if np.isscalar(seconds) else list(seconds)
        values = [seconds_to_frames(s) for s in values]
    else:
        values = [frames] * count if np.isscalar(frames) else list(frames)
    values = [check_frames(v) for v in values]
    if len(values) != count:
        raise ModelError(f"{len(values)} lengths given for {count} prompts")
    return values


def parse_sequence(text: str) -> list[Segment]:
    """Lines of `seconds<TAB>prompt` (blank lines and # comments skipped); errors name the line."""
    segments: list[Segment] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        seconds, sep, prompt = line.partition("\t")
        try:
            value = float(seconds)
        except ValueError:
            value = float("nan")
        if not sep or not prompt.strip() or not math.isfinite(value) or value <= 0:
            raise ModelError(f"sequence line {number}: expected 'seconds<TAB>prompt' with positive seconds, "
                             f"got {line[:80]!r}")
        if value > MAX_LONG_SECONDS:
            raise ModelError(f"sequence line {number}: {value:g} s is longer than the {MAX_LONG_SECONDS:g} s "
                             "one generation makes")
        if len(segments) == MAX_SEGMENTS:
            raise ModelError(f"the sequence has more than {MAX_SEGMENTS} rows: each row may take a model window "
                             "of its own; merge short rows")
        segments.append(Segment(prompt.strip(), seconds_to_frames(value)))
    if not segments:
        raise ModelError("the sequence has no 'seconds<TAB>prompt' line")
    return check_sequence(segments)


def check_sequence(segments: Sequence[Segment]) -> list[Segment]:
    """A prompt sequence one generation can make: at most MAX_SEGMENTS rows, MAX_LONG_SECONDS in all."""
    segments = list(segments)
    if len(segments) > MAX_SEGMENTS:
        raise ModelError(f"{len(segments)} segments, more than the {MAX_SEGMENTS} one sequence may have")
    total = sum(s.frames for s in segments)
    if total > MAX_LONG_SECONDS * FPS:
        raise ModelError(f"the sequence lasts {total / FPS:.1f} s in all, longer than the {MAX_LONG_SECONDS:.0f} s "
                         "one generation makes")
    return segments

"""Editing along time: regenerate a range, extend a motion, and go past one model call's 9.8 s.

All three are MoMask's temporal inpainting. A long motion is made window by window: each
window after the first keeps the last tokens of the one before as context and fills the rest
with the prompt of its segment, so transitions are generated, not cut. Windows are stitched
in token space and the whole sequence is decoded at once (the decoder is convolutional), so
no crossfade is needed at the seams.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..control import apply as control
from ..control.constraints import Constraint, check_frames
from ..errors import ModelError
from ..settings import EDIT_RESIDUAL_GUIDANCE, FPS, FRAMES_PER_TOKEN, MAX_FRAMES, GenerationSettings
from .model import TokenModel
from .requests import Edited, Motion, Progress, Segment, check_prompts, check_sequence, check_variations

CONTEXT_FRAMES = 40        # frames of the previous window a new window continues from (2 s)


def token_span(start_frame: int, end_frame: int, unit: int = FRAMES_PER_TOKEN) -> tuple[int, int]:
    """Tokens covering frames start..end (inclusive), rounded outward: (first, last + 1)."""
    if end_frame < start_frame:
        raise ModelError(f"range end {end_frame} is before its start {start_frame}")
    return start_frame // unit, (end_frame + unit) // unit


def _fill(model: TokenModel, text: torch.Tensor, ids: torch.Tensor, editable: torch.Tensor,
          settings: GenerationSettings, generators: list[torch.Generator],
          progress: Progress | None = None) -> torch.Tensor:
    """Regenerate the editable tokens of ids (B, N, Q) in context; other positions keep every layer.

    `progress(stage, fraction)` is called between model passes (raise from it to cancel)."""
    lengths = [ids.shape[1]] * ids.shape[0]
    layers = model.sample_tokens(text, lengths, settings, generators, progress, ids=ids[..., 0], editable=editable)
    return torch.where(editable[..., None], layers, ids)


def generate_sequence(model: TokenModel, segments: Sequence[Segment], *, seed: int = 0, variations: int = 1,
                      settings: GenerationSettings | None = None, context_frames: int = CONTEXT_FRAMES,
                      progress: Progress | None = None, constraints: Sequence[Constraint] | None = None) -> Motion:
    """One continuous motion per variation following each segment's prompt in turn, any length;
    each meets `constraints` (frames of the whole sequence)."""
    settings = settings or GenerationSettings()
    settings.validate()
    constraints = control.prepare(constraints, model.joints_num)
    unit = model.frames_per_token
    window = MAX_FRAMES // unit
    context = max(1, min(context_frames // unit, window // 2))
    segments = check_sequence(segments)
    check_prompts([s.prompt for s in segments])
    variations = check_variations(variations)
    # token boundaries of the segments, from their cumulative frame counts
    bounds = np.cumsum([0] + [s.frames for s in segments]) // unit
    if bounds[-1] < 1 or any(b1 <= b0 for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True)):
        raise ModelError(f"every segment must last at least {unit} frames ({unit / FPS:.1f} s)")
    check_frames(constraints, int(bounds[-1]) * unit)
    generators = model.generators([seed + k for k in range(variations)])
    texts = {p: model.encode_text([p] * variations) for p in dict.fromkeys(s.prompt for s in segments)}
    ids: torch.Tensor | None = None
    done, seams = 0, []
    while done < bounds[-1]:
        index = int(np.searchsorted(bounds, done, side="right") - 1)
        segment_end = int(bounds[index + 1])
        text = texts[segments[index].prompt]
        if ids is None:
            count = min(window, segment_end)
            ids = model.sample_tokens(text, [count] * variations, settings, generators)
        else:
            count = min(window - context, segment_end - done)
            head = ids[:, -context:]
            window_ids = torch.cat([head, torch.zeros_like(head[:, :1]).expand(-1, count, -1)], dim=1)
            editable = torch.zeros(window_ids.shape[:2], dtype=torch.bool, device=model.device)
            editable[:, context:] = True
            filled = _fill(model, text, window_ids, editable, settings, generators)
            seams.append(done * unit)
            ids = torch.cat([ids, filled[:, context:]], dim=1)
        done = ids.shape[1]
        if progress is not None:
            progress("base tokens", 0.9 * done / bounds[-1])
    prompts = [" / ".join(s.prompt for s in segments)] * variations
    motion = control.direct_motion(model.decode(ids, [ids.shape[1] * unit] * variations, prompts), constraints)
    motion.seams = seams
    if progress is not None:
        progress("done", 1.0)
    return motion


def edit_range(model: TokenModel, features: np.ndarray, start_frame: int, end_frame: int, prompt: str, *,
               seed: int = 0, settings: GenerationSettings | None = None, progress: Progress | None = None,
               constraints: Sequence[Constraint] | None = None) -> Edited:
    """Regenerate frames start..end (inclusive) of one motion (T, C) with the prompt, in context.

    The motion is cut to whole tokens (at most one model call); the tokens covering the range
    are regenerated (rounded outward), every other token keeps all its layers. `constraints`
    fall on regenerated frames, with positions in the frame of `recover_from_ric(features)`
    (where the returned joints are): the regenerated frames meet them, no other frame changes.
    """
    settings = settings or GenerationSettings(residual_guidance=EDIT_RESIDUAL_GUIDANCE)
    settings.validate()
    constraints = control.prepare(constraints, model.joints_num)
    features = _one_motion(model, features)
    frames = features.shape[0] - features.shape[0] % model.frames_per_token
    if not 0 <= start_frame <= end_frame < frames:
        raise ModelError(f"range {start_frame}-{end_frame} is outside the motion's frames 0-{frames - 1}")
    ids = model.encode(features[:frames])
    first, last = token_span(start_frame, end_frame, model.frames_per_token)
    if first == 0 and last == ids.shape[1]:
        raise ModelError("the range covers the whole motion: leave some frames as context, or generate instead")
    editable = torch.zeros(ids.shape[:2], dtype=torch.bool, device=model.device)
    editable[:, first:last] = True
    unit = model.frames_per_token
    editable_frames = np.zeros(frames, bool)
    editable_frames[first * unit: last * unit] = True
    control.spans_for(constraints, editable_frames)  # before the model runs: a misplaced one fails fast
    text = model.encode_text([prompt])
    filled = _fill(model, text, ids, editable, settings, model.generators([seed]), progress)
    motion = model.decode(filled, [frames], [prompt])
    motion = control.direct_motion(motion, constraints, editable_frames=editable_frames)
    return Edited(motion, first * unit, last * unit)


def extend(model: TokenModel, features: np.ndarray, prompt: str, *, frames_before: int = 0, frames_after: int = 0,
           seed: int = 0, settings: GenerationSettings | None = None, progress: Progress | None = None) -> Edited:
    """New frames before and/or after a motion (T, C), continuing from its ends.

    Returns a window holding the new frames and the context they continue from;
    `frame_start`/`frame_end` mark the new part at the end (after) or start (before) of it.
    """
    settings = settings or GenerationSettings(residual_guidance=EDIT_RESIDUAL_GUIDANCE)
    settings.validate()
    features = _one_motion(model, features, limit=None)
    unit = model.frames_per_token
    if (frames_before > 0) == (frames_after > 0):
        raise ModelError("extend either before or after the motion, by a positive number of frames")
    new = (frames_before or frames_after) // unit
    window = MAX_FRAMES // unit
    if new < 1 or new > window - 1:
        raise ModelError(f"one extension adds {unit} to {(window - 1) * unit} frames, got "
                         f"{frames_before or frames_after}")
    context_frames = min(features.shape[0], (window - new) * unit)
    context_frames -= context_frames % unit
    if context_frames < unit:
        raise ModelError(f"the motion is shorter than one token ({unit} frames): nothing to continue from")
    source = features[-context_frames:] if frames_after else features[:context_frames]
    context = model.encode(source)
    blank = torch.zeros_like(context[:, :1]).expand(-1, new, -1)
    ids = torch.cat([context, blank], 1) if frames_after else torch.cat([blank, context], 1)
    editable = torch.zeros(ids.shape[:2], dtype=torch.bool, device=model.device)
    if frames_after:
        editable[:, -new:] = True
    else:
        editable[:, :new] = True
    filled = _fill(model, model.encode_text([prompt]), ids, editable, settings, model.generators([seed]),
                   progress)
    motion = model.decode(filled, [filled.shape[1] * unit], [prompt])
    span = (context.shape[1] * unit, filled.shape[1] * unit) if frames_after else (0, new * unit)
    return Edited(motion, *span)


def join_extension(original: np.ndarray, result: Edited, blend: int = 8) -> np.ndarray:
    """The original features (T, C) with an extension's new frames joined on.

    The extension's window re-decodes the context it continued from, never exactly the original
    frames, so the last `blend` frames before the join cross-fade from the original into the
    window: features are relative to the body, so joined rows give one continuous motion.
    """
    original = np.asarray(original, dtype=np.float32)
    window = result.motion.features[0, : result.motion.lengths[0]]
    after = result.frame_start > 0
    context = window[: result.frame_start] if after else window[result.frame_end:]
    blend = max(0, min(blend, len(context), len(original)))
    weights = (np.arange(1, blend + 1, dtype=np.float32) / (blend + 1))[:, None]
    if after:
        faded = original[len(original) - blend:] * (1 - weights) + context[len(context) - blend:] * weights
        return np.concatenate([original[: len(original) - blend], faded, window[result.frame_start:]])
    faded = context[:blend] * weights[::-1] + original[:blend] * (1 - weights[::-1])
    return np.concatenate([window[: result.frame_end], faded, original[blend:]])


def _one_motion(model: TokenModel, features: np.ndarray, limit: int | None = MAX_FRAMES) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if features.ndim == 3 and features.shape[0] == 1:
        features = features[0]
    if features.ndim != 2 or features.shape[1] != model.feature_dim:
        raise ModelError(f"expected one motion of shape (frames, {model.feature_dim}), found {features.shape}")
    if limit is not None and features.shape[0] > limit:
        raise ModelError(f"{features.shape[0]} frames are more than one model call's {MAX_FRAMES}: "
                         "pass a window of the motion")
    return features


def seam_speeds(joints: np.ndarray, seams: Sequence[int], fps: float = FPS, margin: int = 2) -> dict[str, float]:
    """Joint speeds near seams against the speeds elsewhere, for one motion (T, J, 3).

    A seam shows as speeds near it that are higher than anywhere inside the windows; the
    ratio `seam_max / inside_max` stays at or below 1 for a seamless motion.
    """
    speed = np.linalg.norm(np.diff(np.asarray(joints, np.float64), axis=0), axis=-1) * fps  # (T-1, J)
    steps = np.arange(len(speed)) + 0.5  # a step sits between two frames
    near = np.zeros(len(speed), dtype=bool)
    for seam in seams:
        near |= np.abs(steps - seam) <= margin
    if not near.any() or near.all():
        raise ModelError("seams must fall inside the motion and leave frames away from them")
    seam_max, inside_max = float(speed[near].max()), float(speed[~near].max())
    return {"seam_max": seam_max, "inside_max": inside_max, "ratio": seam_max / max(inside_max, 1e-9)}


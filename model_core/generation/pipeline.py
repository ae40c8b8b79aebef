"""MoMask: text → motion, and a motion with a range regenerated, for any length and batch.

The request-level calls on top of the networks' single passes (`model.TokenModel`): lengths
from seconds, frames or the length estimator, variations with their own seeds, motions past one
model call made window by window (`timeline`). Every call takes its own seed (a
`torch.Generator` per sample, never global RNG state), so the same prompt, seed and settings give
the same motion whatever else is in the batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..control import apply as control
from ..control.constraints import Constraint, check_frames, last_frame
from ..errors import ModelError
from ..inputs.numbers import seed as check_seed
from ..settings import EDIT_RESIDUAL_GUIDANCE, MAX_FRAMES, GenerationSettings
from .model import TokenModel
from .requests import (
    DECODE,
    DONE,
    LENGTH,
    TEXT,
    Edited,
    Motion,
    Progress,
    Segment,
    check_prompts,
    check_variations,
    frames_to_tokens,
    per_prompt_frames,
    report,
    stack_motions,
)
from .timeline import edit_range, extend, generate_sequence


class MoMask(TokenModel):
    """The loaded models and what can be done with them."""

    # ----------------------------------------------------------------------------- high level

    def generate(self, prompts: Sequence[str] | str, seconds: float | Sequence[float] | None = None, *,
                 frames: int | Sequence[int] | None = None, seed: int = 0, variations: int = 1,
                 settings: GenerationSettings | None = None, progress: Progress | None = None,
                 constraints: Sequence[Constraint] | None = None) -> Motion:
        """Motions for each prompt × variation; variation k of any prompt uses seed + k.

        Length: `frames` or `seconds` (one value or one per prompt); with neither, the length
        estimator samples it, as the official code does (at least up to the last constrained
        frame). `constraints`: every motion meets them (`model_core.control`).
        """
        settings = settings or GenerationSettings()
        settings.validate()
        prompts = check_prompts(prompts)
        constraints = control.prepare(constraints, self.joints_num)
        variations = check_variations(variations)
        seed = check_seed(seed, variations)
        batch = [p for p in prompts for _ in range(variations)]
        per_prompt = per_prompt_frames(seconds, frames, len(prompts))
        if per_prompt is not None and max(per_prompt) > MAX_FRAMES:
            return self._generate_long(prompts, per_prompt, seed, variations, settings, progress, constraints)
        generators = self.generators([seed + k for _ in prompts for k in range(variations)])

        report(progress, "text", TEXT)
        features = self.encode_text(batch)
        if per_prompt is None:
            report(progress, "length", LENGTH)
            least = -(-(last_frame(constraints) + 1) // self.frames_per_token)
            if least * self.frames_per_token > MAX_FRAMES:
                raise ModelError(f"a constraint falls on frame {last_frame(constraints)}, past what one call makes "
                                 f"without a length ({MAX_FRAMES} frames): give the length")
            token_lengths = [max(n, least) for n in self.estimate_tokens(features, generators)]
        else:
            token_lengths = [frames_to_tokens(f, self.frames_per_token) for f in per_prompt for _ in range(variations)]
            check_frames(constraints, min(token_lengths) * self.frames_per_token)

        motion = self._tokens_to_motion(features, token_lengths, settings, generators, batch, progress)
        return control.direct_motion(motion, constraints)

    def _tokens_to_motion(self, text_features: torch.Tensor, token_lengths: list[int], settings: GenerationSettings,
                          generators: list[torch.Generator], prompts: list[str], progress: Progress | None, *,
                          ids: torch.Tensor | None = None, editable: torch.Tensor | None = None,
                          on_step: Callable[[int, torch.Tensor], None] | None = None) -> Motion:
        """Base tokens (generated, or `editable` ones of `ids` refilled), residual layers, decode."""
        all_ids = self.sample_tokens(text_features, token_lengths, settings, generators, progress, ids=ids,
                                     editable=editable, on_step=on_step)
        report(progress, "decode", DECODE)
        result = self.decode(all_ids, [n * self.frames_per_token for n in token_lengths], prompts)
        report(progress, "done", DONE)
        return result

    def _generate_long(self, prompts: list[str], frames: list[int], seed: int, variations: int,
                       settings: GenerationSettings, progress: Progress | None,
                       constraints: list[Constraint]) -> Motion:
        """Lengths past one model call: each prompt's motion is made window by window."""
        parts = [generate_sequence(self, [Segment(p, f)], seed=seed, variations=variations, settings=settings,
                                   progress=progress, constraints=constraints)
                 for p, f in zip(prompts, frames, strict=True)]
        return stack_motions(parts)

    def edit(self, prompts: Sequence[str] | str, ids: torch.Tensor | np.ndarray, edit_mask: torch.Tensor | np.ndarray,
             *, seed: int = 0, settings: GenerationSettings | None = None, progress: Progress | None = None,
             on_step: Callable[[int, torch.Tensor], None] | None = None,
             constraints: Sequence[Constraint] | None = None) -> Motion:
        """Regenerate the tokens where `edit_mask` (B, N) is True, keeping the others (temporal inpainting).

        `ids` (B, N, Q) or base ids (B, N) of an encoded motion; the masked transformer refills the
        masked base tokens with the prompt in context, then every residual layer is predicted
        again for the whole motion, as the official editing script does. `constraints` (frames of
        the motion, positions in the frame its decoded joints are in) must fall on regenerated
        frames of every motion; only regenerated frames change to meet them.
        """
        settings = settings or GenerationSettings(residual_guidance=EDIT_RESIDUAL_GUIDANCE)
        settings.validate()
        prompts = check_prompts(prompts)
        constraints = control.prepare(constraints, self.joints_num)
        seed = check_seed(seed)
        ids = torch.as_tensor(np.asarray(ids) if isinstance(ids, np.ndarray) else ids).to(self.device)
        base = ids[..., 0] if ids.ndim == 3 else ids
        mask = torch.as_tensor(np.asarray(edit_mask) if isinstance(edit_mask, np.ndarray) else edit_mask)
        mask = mask.to(self.device, torch.bool)
        if len(prompts) != base.shape[0] or mask.shape != base.shape:
            raise ModelError(f"edit needs one prompt per motion and a mask shaped like the tokens {tuple(base.shape)}; "
                             f"got {len(prompts)} prompts and a mask of {tuple(mask.shape)}")
        if not mask.any():
            raise ModelError("the edit mask selects no token: nothing to regenerate")
        if (base < 0).any() or (base >= self.mask_model.config.num_tokens).any():
            raise ModelError("token ids out of range for this model")
        generators = self.generators([seed] * len(prompts))
        lengths = [base.shape[1]] * len(prompts)
        # the frames every motion regenerates: a constraint must fall on one of them
        editable_frames = mask.all(0).repeat_interleave(self.frames_per_token).cpu().numpy()
        if constraints:
            check_frames(constraints, len(editable_frames))
            control.spans_for(constraints, editable_frames)
        report(progress, "text", TEXT)
        features = self.encode_text(prompts)
        motion = self._tokens_to_motion(features, lengths, settings, generators, prompts, progress, ids=base,
                                        editable=mask, on_step=on_step)
        return control.direct_motion(motion, constraints, editable_frames=editable_frames)

    # ----------------------------------------------------------------------------- along time

    def generate_sequence(self, segments: Sequence[Segment], *, seed: int = 0, variations: int = 1,
                          settings: GenerationSettings | None = None, progress: Progress | None = None,
                          constraints: Sequence[Constraint] | None = None) -> Motion:
        """One continuous motion through each segment's prompt in turn (`timeline.generate_sequence`).

        This and the two below are also `serve.client.RemoteModel`'s calls, so a caller holds
        either model and calls the same methods."""
        return generate_sequence(self, segments, seed=seed, variations=variations, settings=settings,
                                 progress=progress, constraints=constraints)

    def edit_range(self, features: np.ndarray, start_frame: int, end_frame: int, prompt: str, *, seed: int = 0,
                   settings: GenerationSettings | None = None, progress: Progress | None = None,
                   constraints: Sequence[Constraint] | None = None) -> Edited:
        """Frames start..end (inclusive) of one motion regenerated in context (`timeline.edit_range`)."""
        return edit_range(self, features, start_frame, end_frame, prompt, seed=seed, settings=settings,
                          progress=progress, constraints=constraints)

    def extend(self, features: np.ndarray, prompt: str, *, frames_before: int = 0, frames_after: int = 0,
               seed: int = 0, settings: GenerationSettings | None = None, progress: Progress | None = None) -> Edited:
        """New frames before or after one motion (`timeline.extend`)."""
        return extend(self, features, prompt, frames_before=frames_before, frames_after=frames_after, seed=seed,
                      settings=settings, progress=progress)

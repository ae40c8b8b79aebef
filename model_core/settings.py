"""Generation settings, the model's fixed rates and every limit on a request: plain Python, no PyTorch.

The Blender layer draws its panel and parses its command line from these, so the defaults and
limits live in one place even where PyTorch is not installed yet. The model's own limits come
first; a server shared by a studio holds one request to stricter ones (`SERVER_*`), which the
sidebar uses too, since its requests may go to a server.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .inputs.numbers import SEED_MAX
from .inputs.timing import MAX_MOTION_SECONDS

FPS = 20
FRAMES_PER_TOKEN = 4  # the released VQ-VAE's downsampling; a loaded model says its own (`frames_per_token`)
MAX_FRAMES = 196  # the longest motion one model call makes (9.8 s)
MIN_SECONDS = FRAMES_PER_TOKEN / FPS  # the shortest motion: one token
MAX_LONG_SECONDS = MAX_MOTION_SECONDS  # the longest motion one generation makes, window by window (10 minutes)
EDIT_RESIDUAL_GUIDANCE = 2.0  # the official editing script's residual guidance (generation uses 5)

# ----------------------------------------------------------------------------- the model's limits
MAX_STEPS = 1000            # remask steps: the official default is 18; past this a call never ends
MAX_GUIDANCE = 100.0        # |guidance| past this drowns the logits (1e300 overflowed float32 into NaN)
MIN_TEMPERATURE = 1e-10     # the official greedy runs use 1e-9; below, logits / temperature overflow
MAX_TEMPERATURE = 100.0     # past this every token is equally likely (and inf gives NaN)
MAX_VARIATIONS = 64         # variations are rows of one batch: memory grows with them
MAX_SEGMENTS = 100          # rows of a prompt sequence: each row may cost a model window of its own
MAX_PROMPT_CHARS = 20_000   # CLIP reads 77 tokens (about 60 words); past this a text is refused, not encoded
MAX_CONSTRAINTS = 100_000   # more than 22 joints on every frame of a 4-minute motion
MAX_SEED = SEED_MAX         # torch.Generator takes 64-bit seeds

# ----------------------------------------------------------------------------- a server's (and the sidebar's)
# One request must not hold a model that a studio shares for long, nor fill its memory.
SERVER_MAX_STEPS = min(100, MAX_STEPS)
SERVER_MAX_VARIATIONS = min(16, MAX_VARIATIONS)
SERVER_MAX_PROMPTS = 16
SERVER_MAX_SAMPLES = 32                               # prompts x variations in one request
SERVER_MAX_SEGMENTS = min(64, MAX_SEGMENTS)
SERVER_MAX_PROMPT_CHARS = min(1000, MAX_PROMPT_CHARS)  # already far more text than CLIP sees
SERVER_MAX_CONSTRAINTS = min(20_000, MAX_CONSTRAINTS)  # a pelvis path may hold one target per frame
SERVER_MAX_SEED = min(2**53, MAX_SEED)                 # exact in every JSON client
SERVER_BATCH = 16           # requests that share one model call by default (`serve --max-batch`)


@dataclass(frozen=True)
class GenerationSettings:
    """The official generation defaults (gen_t2m.py / eval_option.py)."""
    steps: int = 18                  # remasking iterations of the masked transformer
    guidance: float = 4.0            # classifier-free guidance of the masked transformer
    residual_guidance: float = 5.0   # guidance of the residual transformer
    temperature: float = 1.0         # masked transformer sampling temperature
    residual_temperature: float = 1.0
    topk: float = 0.9                # keep the top (1 - topk) share of logits

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: GenerationSettings | None = None) -> GenerationSettings:
        """Settings from any mapping holding some of the fields (parsed flags, a request, a dataclass's
        `vars`); fields it lacks come from `base` (the defaults). Other keys are not read."""
        base = base or cls()
        return cls(**{f.name: values[f.name] if f.name in values else getattr(base, f.name) for f in fields(cls)})

    def validate(self) -> None:
        """Every value in the range the model can run with (model_core.inputs.numbers names the limit)."""
        from .errors import ModelError
        from .inputs.numbers import finite, whole

        whole(self.steps, "steps", 1, MAX_STEPS)
        if not finite(self.topk, "topk", 0.0, 1.0) < 1.0:
            raise ModelError(f"topk must be in [0, 1), got {self.topk}")
        for name in ("temperature", "residual_temperature"):
            finite(getattr(self, name), name, MIN_TEMPERATURE, MAX_TEMPERATURE)
        for name in ("guidance", "residual_guidance"):
            finite(getattr(self, name), name, -MAX_GUIDANCE, MAX_GUIDANCE)

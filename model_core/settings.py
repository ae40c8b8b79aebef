"""Generation settings and the model's fixed rates: plain Python, importable without PyTorch.

The Blender layer draws its panel and parses its command line from these, so the defaults live in
one place even where PyTorch is not installed yet.
"""
from __future__ import annotations

from dataclasses import dataclass

from .inputs.timing import MAX_MOTION_SECONDS

FPS = 20
MAX_FRAMES = 196  # the longest motion one model call makes (9.8 s)
MAX_LONG_SECONDS = MAX_MOTION_SECONDS  # the longest motion one generation makes, window by window (10 minutes)
EDIT_RESIDUAL_GUIDANCE = 2.0  # the official editing script's residual guidance (generation uses 5)
MAX_STEPS = 1000            # remask steps: the official default is 18; past this a call never ends
MAX_GUIDANCE = 100.0        # |guidance| past this drowns the logits (1e300 overflowed float32 into NaN)
MIN_TEMPERATURE = 1e-10     # the official greedy runs use 1e-9; below, logits / temperature overflow
MAX_TEMPERATURE = 100.0     # past this every token is equally likely (and inf gives NaN)
MAX_VARIATIONS = 64         # variations are rows of one batch: memory grows with them


@dataclass(frozen=True)
class GenerationSettings:
    """The official generation defaults (gen_t2m.py / eval_option.py)."""
    steps: int = 18                  # remasking iterations of the masked transformer
    guidance: float = 4.0            # classifier-free guidance of the masked transformer
    residual_guidance: float = 5.0   # guidance of the residual transformer
    temperature: float = 1.0         # masked transformer sampling temperature
    residual_temperature: float = 1.0
    topk: float = 0.9                # keep the top (1 - topk) share of logits

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

"""Generation settings and the model's fixed rates: plain Python, importable without PyTorch.

The Blender layer draws its panel and parses its command line from these, so the defaults live in
one place even where PyTorch is not installed yet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ModelError

FPS = 20
MAX_FRAMES = 196  # the longest motion one model call makes (9.8 s)
MAX_LONG_SECONDS = 600.0  # the longest motion one generation makes, window by window (10 minutes)
EDIT_RESIDUAL_GUIDANCE = 2.0  # the official editing script's residual guidance (generation uses 5)


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
        if self.steps < 1:
            raise ModelError(f"steps must be at least 1, got {self.steps}")
        if not 0.0 <= self.topk < 1.0:
            raise ModelError(f"topk must be in [0, 1), got {self.topk}")
        for name in ("temperature", "residual_temperature"):
            if not getattr(self, name) > 0:
                raise ModelError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("guidance", "residual_guidance"):
            if not math.isfinite(getattr(self, name)):
                raise ModelError(f"{name} must be a finite number, got {getattr(self, name)}")

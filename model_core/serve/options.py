"""What a serving process (or each Ray replica) needs to load the model, and the loading itself.

PyTorch's threads wait as `model_core.threads` sets it at `import model_core`, in a server as
anywhere else (and in each Ray replica, whose process imports model_core before torch).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeOptions:
    """Everything a process (or a Ray replica) needs to load the model and build the app."""
    checkpoints: str
    clip: str
    device: str
    token: str | None
    max_batch: int


def load_engine(options: ServeOptions):
    """The model on its device, wrapped for serving (also what each Ray replica runs)."""
    from ..generation.pipeline import MoMask
    from .engine import Engine

    return Engine(MoMask.load(options.checkpoints, options.clip, device=options.device))

"""What a serving process (or each Ray replica) needs to load the model, and the loading itself."""
from __future__ import annotations

import os
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
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning CPU threads between requests
    from ..generation.pipeline import MoMask
    from .engine import Engine

    return Engine(MoMask.load(options.checkpoints, options.clip, device=options.device))

"""MoMask inference: the released checkpoints, loaded unchanged, giving the official numbers."""
from . import motion, skeleton
from .errors import ModelError
from .pipeline import FPS, MAX_FRAMES, Cancelled, GenerationSettings, MoMask, Motion

__all__ = ["FPS", "MAX_FRAMES", "Cancelled", "GenerationSettings", "ModelError", "MoMask", "Motion", "motion",
           "skeleton"]

"""MoMask inference: the released checkpoints, loaded unchanged, giving the official numbers.

Importing the package needs NumPy only; the model class (which needs PyTorch) loads on first use,
so an application can show settings and say what is missing before PyTorch is installed, or use
a model server (`serve.client`) without ever installing it.
"""
from . import motion
from .errors import ModelError
from .generation.requests import Cancelled, Motion
from .motion import skeleton
from .settings import FPS, MAX_FRAMES, MAX_LONG_SECONDS, GenerationSettings

__version__ = "0.1.0"

_NEED_TORCH = ("MoMask",)

__all__ = ["FPS", "MAX_FRAMES", "MAX_LONG_SECONDS", "Cancelled", "GenerationSettings", "ModelError", "Motion", "motion",
           "skeleton", *_NEED_TORCH]


def __getattr__(name: str):
    if name in _NEED_TORCH:
        from .generation import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'model_core' has no attribute {name!r}")

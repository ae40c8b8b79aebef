"""MoMask inference: the released checkpoints, loaded unchanged, giving the official numbers.

Importing the package needs NumPy only; the model class (which needs PyTorch) loads on first use,
so an application can show settings and say what is missing before PyTorch is installed, or use
a model server (`serve.client`) without ever installing it.
"""
from . import threads

threads.apply_at_import()  # before any module below imports torch: OpenMP reads it once, at load

from . import motion  # noqa: E402
from .errors import ModelError  # noqa: E402
from .generation.requests import Cancelled, Motion  # noqa: E402
from .motion import skeleton  # noqa: E402
from .settings import FPS, MAX_FRAMES, MAX_LONG_SECONDS, GenerationSettings  # noqa: E402

__version__ = "0.1.0"

_NEED_TORCH = ("MoMask",)

__all__ = ["FPS", "MAX_FRAMES", "MAX_LONG_SECONDS", "Cancelled", "GenerationSettings", "ModelError", "Motion", "motion",
           "skeleton", *_NEED_TORCH]


def __getattr__(name: str):
    if name in _NEED_TORCH:
        from .generation import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'model_core' has no attribute {name!r}")

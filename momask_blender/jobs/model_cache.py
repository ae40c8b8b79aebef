"""The MoMask model, loaded once per Blender session and kept for the next call (no bpy here)."""
from __future__ import annotations

import threading

from ..errors import MomaskError
from ..setup.weights import check_paths

_lock = threading.Lock()
_cache: dict[tuple[str, str, str], object] = {}

def get_model(checkpoints: str, clip: str, device: str = "cpu"):
    """The loaded model for these paths, loading it on first use."""
    ckpt, clip_path = check_paths(checkpoints, clip)
    key = (str(ckpt.resolve()), str(clip_path.resolve()), device)
    with _lock:
        model = _cache.get(key)
        if model is None:
            try:
                import model_core
            except ImportError as err:
                raise MomaskError(f"the model code is not installed ({err}); reinstall the MoMask extension") \
                    from None
            try:
                model = model_core.MoMask.load(checkpoints=str(ckpt), clip=str(clip_path), device=device)
            except model_core.ModelError as err:
                raise MomaskError(f"cannot load the MoMask model: {err}") from None
            except (OSError, RuntimeError, KeyError, EOFError) as err:
                raise MomaskError(f"cannot load the MoMask model from {ckpt}: {type(err).__name__}: {err}") \
                    from None
            _cache.clear()  # one model at a time: they are large
            _cache[key] = model
        return model


def loaded() -> bool:
    return bool(_cache)


def unload() -> None:
    with _lock:
        _cache.clear()

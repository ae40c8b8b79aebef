"""The MoMask model, loaded once per Blender session and kept for the next call, or a server's (no bpy here).

`model_for(generation)` is where a job learns where its model runs: a `MoMask` in this process
(PyTorch needed), or `RemoteModel` on the server the preferences name (no PyTorch at all). Both
answer the same calls, so the jobs do not care which.
"""
from __future__ import annotations

import threading

from ..errors import MomaskError
from ..setup.weights import check_paths

_lock = threading.Lock()
_cache: dict[tuple[str, str, str], object] = {}


def model_for(generation, progress=None):
    """The model a `jobs.bake.Generation` asks for: its server's, or the one loaded here (running on
    `generation.threads` CPU threads when set). The add-on's own server may still be loading: wait
    for it, reporting progress (which raises on cancel)."""
    if generation.server:
        from model_core.serve.client import Client, RemoteModel, ServerError

        if generation.local_server:
            from ..setup import local_server

            running = local_server.current()
            if running is None or running.url != generation.server:
                raise MomaskError("the local server was stopped: start it again (Edit > Preferences > Add-ons > "
                                  "MoMask) or choose where the model runs")

            def waiting() -> None:
                if progress is not None:
                    progress("starting the local server", 0.0)

            local_server.wait_ready(running, poll=waiting)

        try:
            return RemoteModel(Client(generation.server, generation.token or None))
        except ServerError as err:
            raise MomaskError(str(err)) from None
    if generation.threads > 0:  # every job that runs the model here gets the Threads preference, its load too
        import torch

        torch.set_num_threads(generation.threads)
    return get_model(generation.checkpoints, generation.clip, generation.device)


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
            except ModuleNotFoundError as err:  # PyTorch (or a module it needs) is not in this Python
                from ..setup.pytorch import missing_message

                raise MomaskError(missing_message([err.name or str(err)])) from None
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

"""Frame-rate conversion of sampled motion (the model's 20 fps → the scene's rate)."""
from __future__ import annotations

import numpy as np


def frame_count(frames: int, src_fps: float, dst_fps: float, what: str = "motion") -> int:
    """Frames at `dst_fps` covering the same time as `frames` samples at `src_fps` (end included):
    `model_core.inputs.timing.resampled_frames`, so both rates and both lengths are held to its
    limits before an array of that length exists."""
    from model_core.inputs.timing import resampled_frames

    from ..errors import model_checks

    with model_checks():
        return resampled_frames(frames, src_fps, dst_fps, what)


def resample(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear interpolation along axis 0, sample k taken at time k / dst_fps."""
    x = np.asarray(x, dtype=np.float64)
    n = frame_count(len(x), src_fps, dst_fps)
    if abs(src_fps - dst_fps) < 1e-9 or len(x) < 2:
        return x[:n].copy()
    return interpolate(x, np.arange(n) * (src_fps / dst_fps))


def interpolate(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """x (T, ...) linearly interpolated at fractional frame positions (K,), clamped to the ends."""
    u = np.clip(np.asarray(positions, np.float64), 0, len(x) - 1)
    i0 = np.minimum(np.floor(u + 1e-9).astype(int), len(x) - 1)  # 2.9999999999 is frame 3
    i1 = np.minimum(i0 + 1, len(x) - 1)
    w = np.clip(u - i0, 0.0, 1.0).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i0] * (1 - w) + x[i1] * w


MAX_SCENE_FRAME = 1_048_574  # Blender's MAXFRAME: the last frame a scene (and a key) can be on


def fps_settings(rate: float, what: str = "--fps") -> tuple[int, float]:
    """A frame rate checked (model_core.inputs.timing) and as Blender stores it: render.fps, fps_base."""
    from model_core.inputs.timing import frame_rate

    from ..errors import model_checks

    with model_checks():
        rate = frame_rate(rate, what)
    fps = max(1, int(round(rate)))
    return fps, fps / rate


def check_frame(frame, what: str = "--frame-start") -> int:
    """A scene frame number within Blender's range."""
    from model_core.inputs.numbers import whole

    from ..errors import model_checks

    with model_checks():
        return whole(frame, what, -MAX_SCENE_FRAME, MAX_SCENE_FRAME)


def scene_fps(fps: int, fps_base: float) -> float:
    """Blender's true frame rate: render.fps / render.fps_base (e.g. 30 / 1.001 = 29.97), checked:
    a base of 0.0001 makes 1,200,000 fps, which no bake can fill."""
    from model_core.inputs.timing import frame_rate

    from ..errors import model_checks

    with model_checks():
        return frame_rate(float(fps) / float(fps_base), "the scene's frame rate")

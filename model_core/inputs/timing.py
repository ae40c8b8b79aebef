"""Frame rates, frame times and frame counts: what a motion may ask for, with the limit named.

A frame rate of 0.001, a BVH `Frame Time: 1000` or a ratio of rates of a million turn a few frames
into millions of output frames (gigabytes, then a crash); a tiny frame time squashes a motion into
one frame. Motions of any source are held to the same limits as the longest generation.
"""
from __future__ import annotations

from .numbers import finite, whole

MIN_FPS = 1.0          # slower than one frame a second is a slideshow, not a motion
MAX_FPS = 1000.0       # the fastest motion capture files
MAX_MOTION_SECONDS = 600.0  # ten minutes: the longest motion one generation makes (settings), and one bake
MAX_MOTION_FRAMES = 72_000  # 10 minutes at 120 fps, the fastest scene rate Blender offers


def frame_rate(value, what: str = "frame rate") -> float:
    """Frames per second within [MIN_FPS, MAX_FPS]."""
    return finite(value, f"{what} (frames per second)", MIN_FPS, MAX_FPS)


def rate_from_frame_time(seconds, what: str = "Frame Time") -> float:
    """Frames per second from a BVH-style frame time (seconds per frame), within the same limits."""
    time = finite(seconds, f"{what} (seconds per frame)", 1.0 / MAX_FPS, 1.0 / MIN_FPS)
    return 1.0 / time


def motion_frames(frames, fps: float, what: str = "motion") -> int:
    """A motion's frame count, held to MAX_MOTION_FRAMES and MAX_MOTION_SECONDS at `fps`."""
    count = whole(frames, f"{what}'s frame count", 0)
    if count > MAX_MOTION_FRAMES:
        raise_long(what, f"{count:,} frames", f"{MAX_MOTION_FRAMES:,} frames")
    if count / fps > MAX_MOTION_SECONDS:
        raise_long(what, f"{count / fps:,.1f} s ({count:,} frames at {fps:g} fps)", f"{MAX_MOTION_SECONDS:g} s")
    return count


def resampled_frames(frames: int, src_fps: float, dst_fps: float, what: str = "motion") -> int:
    """Frames at `dst_fps` that cover `frames` samples at `src_fps` (end included), within the limits."""
    src, dst = frame_rate(src_fps, f"{what}'s frame rate"), frame_rate(dst_fps, "the scene's frame rate")
    motion_frames(frames, src, what)
    out = int((max(frames, 1) - 1) * dst / src + 1e-6) + 1 if frames else 0
    return motion_frames(out, dst, f"{what} at {dst:g} fps")


def raise_long(what: str, found: str, limit: str) -> None:
    from ..errors import ModelError

    raise ModelError(f"{what} is too long: {found}, the limit is {limit}; cut it into shorter parts")

"""What a BVH file says, checked before Blender's importer reads it (pure Python and NumPy).

Blender's importer trusts the file: a frame time of 1000 s asks the scene for millions of frames,
1e-300 squashes the motion into one frame, NaN channels are keyed as they are, a missing number
ends in a traceback. Here the hierarchy, the frame count and time, and every motion value are
read first, and a problem is one MomaskError naming the line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MomaskError, model_checks

MAX_BVH_BYTES = 512 << 20  # ten minutes at 120 fps of a 100-joint skeleton is about 100 MB of text
CHANNEL_NAMES = {"xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation"}


@dataclass(frozen=True)
class BvhInfo:
    joints: list[str]
    channels: int       # values per frame
    frames: int
    fps: float


def check_bvh(path: str | Path) -> BvhInfo:
    """The file's joints, channel count, frame count and rate; a MomaskError for anything Blender's
    importer would choke on or turn into a wrong motion."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BVH_BYTES:
            raise MomaskError(f"{path.name} is {size / 2**20:,.0f} MB, more than the {MAX_BVH_BYTES >> 20} MB "
                              "a BVH motion may have")
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise MomaskError(f"motion file not found: {path}") from None
    except OSError as err:
        raise MomaskError(f"cannot read {path}: {err.strerror}") from None
    if not text.strip():
        raise MomaskError(f"{path.name} is empty")
    lines = text.splitlines()
    motion_at = next((i for i, line in enumerate(lines) if line.strip().upper() == "MOTION"), None)
    if not lines[0].strip().upper().startswith("HIERARCHY") or motion_at is None:
        raise MomaskError(f"{path.name} is not a BVH file (no HIERARCHY/MOTION sections)")
    joints, channels, offsets = _hierarchy(path.name, lines[1:motion_at])
    frames, fps = _header(path.name, lines, motion_at)
    _motion(path.name, lines[motion_at + 3:], frames, channels, motion_at + 4)
    if len(offsets) > 1 and not np.abs(np.asarray(offsets[1:])).max() > 0:
        raise MomaskError(f"{path.name}: every bone offset is zero, so the skeleton has no size")
    return BvhInfo(joints, channels, frames, fps)


def _hierarchy(name: str, lines: list[str]) -> tuple[list[str], int, list[list[float]]]:
    joints, offsets, channels, depth = [], [], 0, 0
    needs_offset: list[bool] = []  # per open block: no OFFSET seen in it yet
    for number, line in enumerate(lines, 2):
        words = line.split()
        if not words:
            continue
        key = words[0].upper()  # Blender's importer reads the keywords in any case
        if key in ("ROOT", "JOINT"):
            if len(words) < 2:
                raise MomaskError(f"{name}, line {number}: {key} without a name")
            joints.append(" ".join(words[1:]))
        elif key == "{":
            depth += 1
            needs_offset.append(True)
        elif key == "}":
            depth -= 1
            if depth < 0:
                raise MomaskError(f"{name}, line {number}: a '}}' closes nothing")
            if needs_offset.pop():
                raise MomaskError(f"{name}, line {number}: a joint or End Site without an OFFSET")
        elif key == "OFFSET":
            offsets.append(_numbers(name, number, words[1:], 3, "OFFSET"))
            if needs_offset:
                needs_offset[-1] = False
        elif key == "CHANNELS":
            count = _count(name, number, words[1:2])
            if count != len(words) - 2 or not {w.lower() for w in words[2:]} <= CHANNEL_NAMES or count > 6:
                raise MomaskError(f"{name}, line {number}: CHANNELS should give a count and that many of "
                                  "X/Y/Z position and X/Y/Z rotation")
            channels += count
        elif key != "END":
            raise MomaskError(f"{name}, line {number}: unexpected {key[:40]!r} in the hierarchy")
    if depth != 0:
        raise MomaskError(f"{name}: the hierarchy's braces do not match")
    if not joints or not channels:
        raise MomaskError(f"{name}: the hierarchy has no joints with channels")
    return joints, channels, offsets


def _header(name: str, lines: list[str], motion_at: int) -> tuple[int, float]:
    from model_core.inputs import timing

    head = [line.strip() for line in lines[motion_at + 1: motion_at + 3]]
    if len(head) < 2 or not head[0].lower().startswith("frames:") or not head[1].lower().startswith("frame time:"):
        raise MomaskError(f"{name}, line {motion_at + 2}: expected 'Frames: N' and 'Frame Time: seconds' after MOTION")
    frames = _count(name, motion_at + 2, head[0].split(":", 1)[1].split())
    value = _numbers(name, motion_at + 3, head[1].split(":", 1)[1].split(), 1, "Frame Time", finite=False)[0]
    with model_checks():
        fps = timing.rate_from_frame_time(value, f"{name}: Frame Time")
        timing.motion_frames(frames, fps, name)
    if frames < 2:
        raise MomaskError(f"{name}: {frames} frame(s); a motion needs at least 2")
    return frames, fps


def _motion(name: str, lines: list[str], frames: int, channels: int, first_line: int) -> None:
    rows = [line for line in lines if line.strip()]
    if len(rows) < frames:
        raise MomaskError(f"{name}: 'Frames: {frames}' but only {len(rows)} frames follow")
    for k in range(frames):
        if len(rows[k].split()) != channels:
            raise MomaskError(f"{name}: frame {k + 1} has {len(rows[k].split())} values, the hierarchy has "
                              f"{channels} channels")
    try:
        values = np.array(" ".join(rows[:frames]).split(), dtype=np.float64)
    except ValueError:
        bad = next(k for k, row in enumerate(rows[:frames]) if not _parses(row))
        raise MomaskError(f"{name}: frame {bad + 1} holds a value that is not a number") from None
    if not np.isfinite(values).all():
        bad = int(np.argmax(~np.isfinite(values))) // channels
        raise MomaskError(f"{name}: frame {bad + 1} holds NaN or infinite values")


def _parses(row: str) -> bool:
    try:
        [float(v) for v in row.split()]
    except ValueError:
        return False
    return True


def _count(name: str, number: int, words: list[str]) -> int:
    if len(words) != 1 or not words[0].isdigit():
        raise MomaskError(f"{name}, line {number}: expected a whole number, got {' '.join(words)[:40]!r}")
    return int(words[0])


def _numbers(name: str, number: int, words: list[str], count: int, what: str, finite: bool = True) -> list[float]:
    try:
        values = [float(w) for w in words]
    except ValueError:
        values = []
    if len(values) != count or (finite and not all(np.isfinite(values))):
        raise MomaskError(f"{name}, line {number}: {what} needs {count} finite number(s), got "
                          f"{' '.join(words)[:60]!r}")
    return values

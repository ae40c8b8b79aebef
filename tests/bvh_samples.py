"""Small BVH texts for the tests: a good two-joint file and the same file spoiled one way."""
from __future__ import annotations

from pathlib import Path

GOOD_BVH = Path(__file__).resolve().parent / "data" / "tiny.bvh"


def bvh_with(*, frame_time: str = "0.05", frames: int | str = 3, bad_value: str | None = None,
             zero_offsets: bool = False, drop_value: bool = False) -> str:
    """GOOD_BVH's text with one thing changed: the frame time, the declared frame count, the second
    frame's third value (`bad_value`, or dropped), or every offset set to zero."""
    text = GOOD_BVH.read_text()
    if zero_offsets:
        text = "\n".join(line.split("OFFSET")[0] + "OFFSET 0 0 0" if "OFFSET" in line else line
                         for line in text.splitlines()) + "\n"
    text = text.replace("Frame Time: 0.05", f"Frame Time: {frame_time}").replace("Frames: 3", f"Frames: {frames}")
    if bad_value is not None or drop_value:
        lines = text.splitlines()
        row = lines.index(next(line for line in lines if line.startswith("Frame Time"))) + 2
        values = lines[row].split()
        if drop_value:
            del values[2]
        else:
            values[2] = bad_value
        lines[row] = " ".join(values)
        text = "\n".join(lines) + "\n"
    return text


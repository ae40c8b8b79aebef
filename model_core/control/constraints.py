"""Constraints on a motion: a joint at a frame at a position, read from untrusted JSON.

    {"constraints": [{"frame": 40, "joint": "left_wrist", "position": [0.3, 1.2, 0.9]},
                     {"frame": 0, "joint": "pelvis", "position": [0.0, 0.0], "axes": "xz"}]}

Positions are metres in HumanML3D axes (Y up, the motion starts at the origin facing +Z), frames
count at 20 fps from 0. A path is many pelvis `xz` targets, a key pose all 22 joints at one
frame, a reach one joint. Every error names the constraint by its place in the list and what it
says, so a user can find it in their file.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..motion.skeleton import T2M
from ..settings import FPS, MAX_CONSTRAINTS, MAX_LONG_SECONDS

JOINT_NAMES: tuple[str, ...] = T2M.joint_names  # type: ignore[assignment]
AXES = {"xyz": (True, True, True), "xz": (True, False, True)}
# Metres (radians for facings): two targets for one joint at one frame closer than this are one
# target. Positions made in a scene are float32: an empty snapped onto a pose 10 m from the
# origin lands micrometres off it, and a tenth of a millimetre is still one place.
SAME = 1e-4
_KEYS = {"frame", "joint", "position", "axes"}


@dataclass(frozen=True)
class Constraint:
    """`joint` (a HumanML3D joint name) at `frame` is at `position`: (x, y, z) for axes "xyz",
    (x, z) on the ground plane for axes "xz"."""
    frame: int
    joint: str
    position: tuple[float, ...]
    axes: str = "xyz"

    def __post_init__(self) -> None:
        problem = _problem(self.frame, self.joint, self.position, self.axes)
        if problem:
            raise ModelError(f"constraint {self.describe()}: {problem}")
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "position", tuple(float(v) for v in self.position))

    @property
    def joint_index(self) -> int:
        return JOINT_NAMES.index(self.joint)

    @property
    def mask(self) -> tuple[bool, bool, bool]:
        """Which of x, y, z the constraint fixes."""
        return AXES[self.axes]

    def target(self) -> np.ndarray:
        """(3,) position with NaN on the axes it leaves free."""
        out = np.full(3, np.nan)
        out[list(self.mask)] = self.position
        return out

    def describe(self) -> str:
        where = ", ".join(f"{v:g}" for v in self.position) if _is_numbers(self.position) else repr(self.position)
        return f"{self.joint} at frame {self.frame} -> ({where}){' on xz' if self.axes == 'xz' else ''}"


@dataclass(frozen=True)
class Facing:
    """The body faces `angle` radians about +Y at `frame` (0 faces +Z, a quarter turn faces +X):
    how a caller that draws a path asks the body to face along it. In JSON:
    `{"frame": 40, "facing": 1.57}` (an addition to the issue's format, which has only joints)."""
    frame: int
    angle: float

    def __post_init__(self) -> None:
        if not _is_int(self.frame) or not 0 <= self.frame < MAX_LONG_SECONDS * FPS:
            raise ModelError(f"{self.describe()}: the frame must be a whole number within a motion")
        if not _is_numbers([self.angle]) or not math.isfinite(self.angle):
            raise ModelError(f"{self.describe()}: the angle must be a finite number of radians")
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "angle", float(self.angle))

    def describe(self) -> str:
        return f"facing {self.angle!r} rad at frame {self.frame}"


def parse_constraints(data, frames: int | None = None) -> list[Constraint]:
    """Constraints from a parsed JSON document (`{"constraints": [...]}`, or the list itself).

    `frames`: the motion's length, when known, so a frame past its end is refused here; the
    model checks again against the length it makes. Two identical targets for one joint at one
    frame count once; two different ones are an error.
    """
    if isinstance(data, dict):
        extra = set(data) - {"constraints"}
        if "constraints" not in data or extra:
            raise ModelError("a constraints document is {\"constraints\": [...]}; "
                             + (f"unexpected keys {sorted(extra)}" if extra else "the 'constraints' list is missing"))
        data = data["constraints"]
    if not isinstance(data, list):
        raise ModelError(f"constraints must be a list of objects, got {type(data).__name__}")
    if len(data) > MAX_CONSTRAINTS:
        raise ModelError(f"{len(data)} constraints are more than the {MAX_CONSTRAINTS} one motion takes")
    parsed = []
    for number, item in enumerate(data):
        parsed.append(_parse_one(number, item))
    result = merge_constraints(parsed, numbers=list(range(len(parsed))))
    if frames is not None:
        check_frames(result, frames)
    return result


def _parse_one(number: int, item) -> Constraint | Facing:
    label = f"constraint {number}"
    if not isinstance(item, dict):
        raise ModelError(f"{label}: expected an object with frame, joint and position, got {_short(item)}")
    if "facing" in item:
        if set(item) != {"frame", "facing"}:
            raise ModelError(f"{label} {_short(item)}: a facing has exactly the keys frame and facing")
        angle = item["facing"]
        if not _is_numbers([angle]):
            raise ModelError(f"{label} {_short(item)}: facing must be a number of radians")
        try:
            return Facing(item["frame"], angle)
        except ModelError as err:
            raise ModelError(f"{label} {_short(item)}: {err}") from None
    unknown = set(item) - _KEYS
    missing = {"frame", "joint", "position"} - set(item)
    if unknown or missing:
        raise ModelError(f"{label} {_short(item)}: " + "; ".join(
            ([f"unknown keys {sorted(map(str, unknown))}"] if unknown else [])
            + ([f"missing {sorted(missing)}"] if missing else [])))
    frame, joint, position, axes = item["frame"], item["joint"], item["position"], item.get("axes", "xyz")
    problem = _problem(frame, joint, position, axes)
    if problem:
        raise ModelError(f"{label} {_short(item)}: {problem}")
    return Constraint(int(frame), joint, tuple(float(v) for v in position), axes)


def _problem(frame, joint, position, axes) -> str | None:
    """What is wrong with one constraint's fields, or None."""
    if not _is_int(frame):
        return f"frame must be a whole number, got {_short(frame)}"
    if frame < 0 or frame >= MAX_LONG_SECONDS * FPS:
        return f"frame {frame} is outside any motion (0 to {int(MAX_LONG_SECONDS * FPS) - 1} at {FPS} fps)"
    if not isinstance(joint, str):
        return f"joint must be a joint name, got {_short(joint)}"
    if joint not in JOINT_NAMES:
        return f"unknown joint {joint!r}; the joints are {', '.join(JOINT_NAMES)}"
    if not isinstance(axes, str) or axes not in AXES:
        return f"axes must be \"xyz\" or \"xz\", got {_short(axes)}"
    count = sum(AXES[axes])
    if not isinstance(position, list | tuple) or not _is_numbers(position):
        return f"position must be a list of {count} numbers, got {_short(position)}"
    if len(position) != count:
        return f"axes {axes!r} takes {count} numbers, got {len(position)}"
    if not all(math.isfinite(float(v)) for v in position):
        return f"position holds NaN or infinity: {_short(position)}"
    return None


def merge_constraints(constraints: Sequence[Constraint | Facing], numbers: Sequence[int] | None = None,
                      labels: Sequence[str] | None = None) -> list[Constraint | Facing]:
    """One constraint per joint and frame, one facing per frame: repeats within SAME dropped, an
    "xz" target merged into an "xyz" one that agrees with it; disagreeing ones are an error naming
    both, by their place in a list (`numbers`, by default 0, 1, ...) or by `labels` (what made
    each one, e.g. "the waypoint 'Empty'", which says where and when in the caller's terms)."""
    items = list(constraints)
    numbers = list(numbers) if numbers is not None else list(range(len(items)))
    names = list(labels) if labels is not None else [f"constraint {n}" for n in numbers]
    if not len(numbers) == len(names) == len(items):
        raise ModelError(f"{len(items)} constraints, {len(numbers)} numbers and {len(names)} labels")
    seen: dict[tuple[int, str], tuple[int, Constraint]] = {}
    facings: dict[int, tuple[int, Facing]] = {}
    for i, c in enumerate(items):
        if isinstance(c, Facing):
            j, other = facings.setdefault(c.frame, (i, c))
            if abs(math.remainder(other.angle - c.angle, 2 * math.pi)) > SAME:
                raise ModelError(_disagree(j, i, other, c, numbers, names if labels is not None else None))
            continue
        if not isinstance(c, Constraint):
            raise ModelError(f"{names[i]}: expected a Constraint, got {_short(c)}")
        key = (c.frame, c.joint)
        if key not in seen:
            seen[key] = (i, c)
            continue
        j, first = seen[key]
        a, b = first.target(), c.target()
        both = ~np.isnan(a) & ~np.isnan(b)
        if np.any(np.abs(a[both] - b[both]) > SAME):
            raise ModelError(_disagree(j, i, first, c, numbers, names if labels is not None else None))
        if np.isnan(a).sum() > np.isnan(b).sum():  # keep the one that fixes more axes
            seen[key] = (j, c)
    return [c for _, c in seen.values()] + [f for _, f in facings.values()]


def _disagree(j: int, i: int, first, second, numbers: list[int], labels: list[str] | None) -> str:
    """The message for two targets of one joint (or two facings) at one frame that disagree. Labels
    name the moment in their own terms, so the frame and the positions (this module's) are said
    only for numbered constraints."""
    if labels is not None:
        who, moment = f"{labels[j]} and {labels[i]}", ""
    else:
        who, moment = f"constraints {numbers[j]} and {numbers[i]}", f" at frame {second.frame}"
    if isinstance(second, Facing):
        values = f", {first.angle:g} and {second.angle:g} rad" if labels is None else ""
        return (f"{who} give the body two different facings{moment}{values}: two different headings at the same "
                "moment; turn one of them, or give it another frame")
    subject = f"the {second.joint.replace('_', ' ')}" if labels is not None else f"{second.joint}{moment}"
    values = f", {_where(first)} and {_where(second)}" if labels is None else ""
    return (f"{who} give {subject} two different targets{values}: two different places at the same moment; "
            "move one of them, or give it another frame")


def _where(c: Constraint) -> str:
    return "(" + ", ".join(f"{v:g}" for v in c.position) + ")" + (" on xz" if c.axes == "xz" else "")


def to_json(constraints: Sequence[Constraint | Facing]) -> list[dict]:
    """The JSON form `parse_constraints` reads back (to send constraints to a model server)."""
    out = []
    for c in constraints:
        if isinstance(c, Facing):
            out.append({"frame": c.frame, "facing": c.angle})
        else:
            out.append({"frame": c.frame, "joint": c.joint, "position": list(c.position), "axes": c.axes})
    return out


def check_frames(constraints: Sequence[Constraint], frames: int, *, first: int = 0, what: str = "the motion") -> None:
    """Every constraint's frame within first..frames-1, or an error naming the first that is not."""
    for c in constraints:
        if not first <= c.frame < frames:
            raise ModelError(f"constraint {c.describe()}: frame {c.frame} is outside {what} "
                             f"(frames {first} to {frames - 1})")


def last_frame(constraints: Sequence[Constraint]) -> int:
    return max((c.frame for c in constraints), default=-1)


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_numbers(values) -> bool:
    return isinstance(values, list | tuple) and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values)


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

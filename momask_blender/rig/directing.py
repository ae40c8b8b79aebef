"""Directing a motion from the scene: keyed poses, a path, waypoints and reach targets become the
model's constraints (pure NumPy, no bpy).

Three spaces meet here, all with HumanML3D axes (Y up, metres):
- *rig space*: the scene divided by the rig's size, the space range editing reads a rig's pose
  into (`windows.rig_joints`): ground x and z are the world's over the rig's scale; height is
  measured from the rig's rest pelvis, which stands at the uniform skeleton's pelvis height;
- *model space*: where a generated motion starts, at the origin facing +Z;
- the *placement* between them: a generated motion starts where the rig stands, facing the way
  the rig faces, as an undirected bake places it.

Frames: scene frames at the scene's rate against model frames at 20 fps from a first frame.
Each target remembers where it came from ("waypoint 'Empty.002'"), so an error names the object
the user made, not a position in a list.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model_core.control.targets import yaw_matrices

from ..errors import MomaskError
from .plan import SOURCE_LEG, RigPlan
from .skeleton import FPS, INDEX, JOINTS, PELVIS_HEIGHT, from_blender

# Reach targets: the bone a user picks and the joint whose place it is (a bone's head).
REACH_JOINTS = {"LEFT_HAND": "left_wrist", "RIGHT_HAND": "right_wrist",
                "LEFT_FOOT": "left_ankle", "RIGHT_FOOT": "right_ankle"}


@dataclass(frozen=True)
class Target:
    """One constraint made from the scene, and what made it (for messages)."""
    frame: int                  # model frame (20 fps from the first generated frame)
    joint: str
    position: tuple[float, ...]  # (x, y, z), or (x, z) with axes "xz"
    axes: str
    source: str                 # e.g. "waypoint 'Empty.001' (frame 24)"
    world: tuple[float, ...] | None = None  # a reach target's world place (met on the rig too)
    scene_frame: float | None = None


# ----------------------------------------------------------------------------- frames


def model_frame(scene_frame: float, first: float, fps: float) -> int:
    """The 20 fps frame nearest a scene frame, counted from the scene frame `first`."""
    return int(round((float(scene_frame) - first) * FPS / fps))


def scene_frame(frame: float, first: float, fps: float) -> float:
    return first + float(frame) * fps / FPS


def nearest_per_model_frame(scene_frames: Sequence[float], first: float, fps: float) -> list[float]:
    """Of scene frames that round to one model frame (keys on every frame of a faster scene),
    the one nearest it: one pose per model frame."""
    best: dict[int, float] = {}
    for f in scene_frames:
        m = model_frame(f, first, fps)
        if m not in best or abs(f - scene_frame(m, first, fps)) < abs(best[m] - scene_frame(m, first, fps)):
            best[m] = float(f)
    return sorted(best.values())


# ----------------------------------------------------------------------------- spaces


def rig_scale(plan: RigPlan) -> float:
    """World units per metre of the uniform skeleton (the rig's legs over the source's)."""
    return plan.leg_length / SOURCE_LEG


def rig_space(points_world: np.ndarray, plan: RigPlan) -> np.ndarray:
    """World points (..., 3; Blender axes) in rig space (HumanML3D axes), as `windows.rig_joints`
    maps the pelvis."""
    p = np.asarray(points_world, np.float64)
    scale = rig_scale(plan)
    rest_z = plan.heads[plan.joint_bone[INDEX["pelvis"]], 2]
    out = np.concatenate([p[..., :2] / scale, ((p[..., 2] - rest_z) / scale + PELVIS_HEIGHT)[..., None]], axis=-1)
    return from_blender(out)


@dataclass(frozen=True)
class Placement:
    """Model space → rig space: a turn about +Y by `yaw` (0 keeps +Z), then a move on the ground."""
    yaw: float
    start: tuple[float, float]  # rig-space (x, z) of the model's origin

    def to_rig(self, points: np.ndarray) -> np.ndarray:
        out = _turn(points, self.yaw)
        out[..., 0] += self.start[0]
        out[..., 2] += self.start[1]
        return out

    def to_model(self, points: np.ndarray) -> np.ndarray:
        p = np.array(points, np.float64)
        p[..., 0] -= self.start[0]
        p[..., 2] -= self.start[1]
        return _turn(p, -self.yaw)


def _turn(points: np.ndarray, angle: float) -> np.ndarray:
    """Points (..., 3) turned about +Y by `angle` (+Z towards +X)."""
    return np.einsum("ij,...j->...i", yaw_matrices(angle), np.asarray(points, np.float64))


def placement_for(plan: RigPlan) -> Placement:
    """Where an undirected bake would put a generated motion: its start on the rig's rest pelvis,
    facing the way the rig faces."""
    forward = from_blender(plan.forward)
    pelvis = rig_space(plan.heads[plan.joint_bone[INDEX["pelvis"]]], plan)
    return Placement(yaw=float(math.atan2(forward[0], forward[2])), start=(float(pelvis[0]), float(pelvis[2])))


def ground(points: np.ndarray) -> np.ndarray:
    """(..., 2) ground (x, z) of HumanML3D-axes points."""
    return np.asarray(points, np.float64)[..., [0, 2]]


# ----------------------------------------------------------------------------- targets from the scene


def path_targets(points: np.ndarray, first: int, last: int, name: str,
                 waypoints: Sequence[Target] = (), skip: Sequence[int] = (), face: bool = False) -> list[Target]:
    """Pelvis targets on every model frame first..last along a polyline (P, 2) of ground points:
    evenly along its length, or timed by the waypoints that fall in that span (each one's
    place along the curve is the nearest point to it; the waypoints themselves stay targets of
    their own, so their frames get no path target). Frames in `skip` (keyed poses: their hips
    say where to be) get none either.

    `face`: the body faces along the path (a facing every FACE_EVERY frames), except within
    FACE_CLEAR frames of a skipped (keyed) frame, where the key's own heading eases in."""
    line = _dedupe(np.asarray(points, np.float64).reshape(-1, 2))
    if len(line) < 2 or not np.isfinite(line).all():
        raise MomaskError(f"the path '{name}' has no length: it needs at least two distinct points")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    if arc[-1] < 1e-6:
        raise MomaskError(f"the path '{name}' has no length: its points all lie in one place")
    if last <= first:
        raise MomaskError(f"the path '{name}' ends (frame {last}) before it starts (frame {first}) in model frames; "
                          "give it an end frame after its start")
    timing = [(first, 0.0)]
    inside = sorted((w for w in waypoints if first < w.frame < last), key=lambda w: w.frame)
    for w in inside:
        s = _nearest_arc(line, arc, np.asarray(w.position, np.float64)[[0, -1]])
        if s < timing[-1][1] - 1e-6:
            raise MomaskError(f"{w.source} lies behind the waypoint before it along the path '{name}': "
                              "waypoints must follow the path in time order")
        timing.append((w.frame, s))
    timing.append((last, arc[-1]))
    frames = np.arange(first, last + 1)
    where = np.interp(frames, [t for t, _ in timing], [s for _, s in timing])
    xz = np.stack([np.interp(where, arc, line[:, 0]), np.interp(where, arc, line[:, 1])], 1)
    taken = {w.frame for w in inside} | {int(f) for f in skip}
    out = [Target(int(f), "pelvis", (float(x), float(z)), "xz", f"the path '{name}'")
           for f, (x, z) in zip(frames, xz, strict=True) if int(f) not in taken]
    if face:
        out += _facing(line, arc, frames, where, name, [int(f) for f in skip])
    return out


FACE_EVERY = 4      # model frames between two facings along a path
FACE_CLEAR = 10     # model frames around a keyed pose without facings (its own heading wins)
FACING = "facing"   # the `joint` of a Target that is a facing: position (angle about +Y,), axes "yaw"


def _facing(line, arc, frames, where, name, keyed) -> list[Target]:
    """Facings along the path's direction at every FACE_EVERY-th frame (and the last)."""
    segment = np.clip(np.searchsorted(arc, where, side="right") - 1, 0, len(line) - 2)
    ahead = line[segment + 1] - line[segment]
    angle = np.arctan2(ahead[:, 0], ahead[:, 1])
    out = []
    for k, frame in enumerate(frames):
        if (frame - frames[0]) % FACE_EVERY and frame != frames[-1]:
            continue
        if any(abs(int(frame) - f) <= FACE_CLEAR for f in keyed):
            continue
        out.append(Target(int(frame), FACING, (float(angle[k]),), "yaw", f"the path '{name}' (facing)"))
    return out


def _dedupe(line: np.ndarray) -> np.ndarray:
    keep = np.concatenate([[True], np.linalg.norm(np.diff(line, axis=0), axis=1) > 1e-9])
    return line[keep]


def _nearest_arc(line: np.ndarray, arc: np.ndarray, point: np.ndarray) -> float:
    """Arc length of the point of the polyline nearest `point`."""
    a, b = line[:-1], line[1:]
    d = b - a
    t = np.clip(((point - a) * d).sum(1) / np.maximum((d * d).sum(1), 1e-18), 0.0, 1.0)
    near = a + t[:, None] * d
    k = int(np.argmin(np.linalg.norm(near - point, axis=1)))
    return float(arc[k] + t[k] * (arc[k + 1] - arc[k]))


def key_targets(joints: np.ndarray, frames: Sequence[int], scene_frames: Sequence[float],
                mapped: Sequence[int]) -> list[Target]:
    """Whole-body targets from keyed poses (K, 22, 3): every joint the rig maps, at each frame."""
    out = []
    for pose, frame, shown in zip(np.asarray(joints, np.float64), frames, scene_frames, strict=True):
        for j in sorted(mapped):
            out.append(Target(int(frame), JOINTS[j], tuple(float(v) for v in pose[j]), "xyz",
                              f"the key pose at frame {shown:g}"))
    return out


def constraints_from(targets: Sequence[Target], frames: int, span_text: str, first: int = 0):
    """Model constraints from scene targets: every frame within first..frames-1 (`span_text`
    says which scene frames that is), merged by `model_core.control.merge_constraints` (one target
    per joint and frame). Errors name the objects."""
    from model_core import ModelError
    from model_core.control.constraints import Constraint, Facing, merge_constraints

    made = []
    for t in targets:
        if not first <= t.frame < frames:
            raise MomaskError(f"{t.source} falls outside the generated motion ({span_text})")
        if not all(math.isfinite(v) for v in t.position):
            raise MomaskError(f"{t.source} has a position that is not a finite number")
        try:
            made.append(Facing(t.frame, t.position[0]) if t.joint == FACING else
                        Constraint(t.frame, t.joint, t.position, t.axes))
        except ModelError as err:
            raise MomaskError(f"{t.source}: {err}") from None
    try:
        return merge_constraints(made, labels=[t.source for t in targets])
    except ModelError as err:
        raise MomaskError(str(err)) from None


def _full(t: Target) -> np.ndarray:
    out = np.full(3, np.nan)
    if t.joint == FACING:
        out[0] = t.position[0]
        return out
    out[[0, 2] if t.axes == "xz" else [0, 1, 2]] = t.position
    return out


def to_model(targets: Sequence[Target], placement: Placement) -> list[Target]:
    """Rig-space targets moved into model space."""
    out = []
    for t in targets:
        if t.joint == FACING:  # a heading turns with the placement
            out.append(dataclasses.replace(t, position=(t.position[0] - placement.yaw,)))
            continue
        full = np.nan_to_num(_full(t))
        p = placement.to_model(full)
        position = (p[0], p[2]) if t.axes == "xz" else tuple(p)
        out.append(dataclasses.replace(t, position=tuple(float(v) for v in position)))
    return out

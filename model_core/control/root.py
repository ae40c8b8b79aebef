"""The root's part of meeting constraints: which way the body faces, where the pelvis goes.

The motion is turned about its root, frame by frame, by a smooth heading change, and its ground
path is rebuilt from its own (turned) steps; then a smooth offset moves the pelvis onto its
targets. Where the targets say where to be but not which way to face (a path, waypoints), the
turn is the one that points the model's own direction of travel along the targets' (when both
move): a walk stays a walk forward along the curve. Where a key pose gives hips and shoulders,
its heading is met exactly.
"""
from __future__ import annotations

import numpy as np

from ..motion.skeleton import T2M, SkeletonSpec, gaussian_smooth
from ..settings import FPS
from .curves import held_curve, local_curve
from .targets import ROOT, Targets, heading_angles, wrap, yaw_matrices

MIN_SPEED = 0.3            # m/s: below this, a stretch of motion has no direction of travel to turn
PATH_SMOOTH_FRAMES = 8.0   # the travel-direction turn is averaged over this many frames (sigma)


def heading_change(joints: np.ndarray, targets: Targets, width: float, pins: list[int],
                   spec: SkeletonSpec = T2M) -> np.ndarray:
    """Turn (T,) about +Y to add to each frame: key headings met, travel along the targets."""
    frames = len(joints)
    own = heading_angles(joints, spec.face_joint_indx)
    keys = {f: float(wrap(h - own[f])) for f, h in targets.facings(spec).items() if 0 <= f < frames}
    path_t, path_v = _travel_turns(joints[:, 0, [0, 2]], *targets.root_ground())
    if len(path_t):  # a key's heading wins near the key; travel decides elsewhere
        far = np.array([all(abs(t - k) > width for k in keys) for t in path_t], bool)
        path_t, path_v = path_t[far], path_v[far]
    times = [float(p) for p in pins] + list(keys) + list(path_t)
    values = [0.0] * len(pins) + list(keys.values()) + list(path_v)
    if not times:
        return np.zeros(frames)
    order = np.argsort(times, kind="stable")
    t, v = np.asarray(times)[order], np.unwrap(np.asarray(values)[order])
    t, index = np.unique(t, return_index=True)
    return held_curve(t, v[index], frames)


def _travel_turns(ground: np.ndarray, frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, turns): between consecutive ground targets, the angle from the motion's own
    travel to the targets', where both move at least MIN_SPEED; smoothed over time."""
    if len(frames) < 2:
        return np.zeros(0), np.zeros(0)
    gap = np.diff(frames).astype(np.float64)
    keep = gap > 0
    want = np.diff(points, axis=0)[keep]
    have = (ground[frames[1:]] - ground[frames[:-1]])[keep]
    gap = gap[keep]
    mid = (frames[1:] + frames[:-1])[keep] / 2.0
    least = MIN_SPEED * gap / FPS
    weight = np.clip(np.minimum(np.linalg.norm(want, axis=1), np.linalg.norm(have, axis=1)) / least - 1.0, 0, 1)
    turn = np.arctan2(want[:, 0], want[:, 1]) - np.arctan2(have[:, 0], have[:, 1])
    use = weight > 0
    if not use.any():
        return np.zeros(0), np.zeros(0)
    mid, turn, weight = mid[use], np.unwrap(wrap(turn[use])), weight[use]
    kernel = np.exp(-0.5 * ((mid[:, None] - mid[None]) / PATH_SMOOTH_FRAMES) ** 2) * weight[None]
    return mid, (kernel @ turn) / kernel.sum(1)


def turn_motion(joints: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Each frame turned about its root by turn[t], the ground path rebuilt from turned steps
    (frame 0's root stays where it is)."""
    rot = yaw_matrices(turn)                                          # (T, 3, 3)
    root = joints[:, :1] * np.array([1.0, 0.0, 1.0])
    body = np.einsum("tij,tkj->tki", rot, joints - root)
    steps = np.diff(joints[:, 0], axis=0) * np.array([1.0, 0.0, 1.0])
    mid = yaw_matrices((turn[1:] + turn[:-1]) / 2)
    path = np.concatenate([root[:1, 0], root[0, 0] + np.cumsum(np.einsum("tij,tj->ti", mid, steps), 0)])
    return body + path[:, None]


def move_root(joints: np.ndarray, original: np.ndarray, targets: Targets, width: float,
              span: tuple[int, int]) -> np.ndarray:
    """The pelvis onto its ground targets (a held offset) and heights (a local one); outside
    `span` the motion goes back onto `original`'s root path."""
    frames = len(joints)
    lo, hi = span
    pins = [f for f in (lo - 1, hi) if 0 <= f < frames]
    t, xz = targets.root_ground()
    reach_t, reach_xz = reach_steps(joints, targets)
    t, xz = np.concatenate([t, reach_t]).astype(np.int64), np.concatenate([xz, reach_xz])
    times = list(pins) + [float(f) for f in t]
    offsets = [original[f, 0, [0, 2]] - joints[f, 0, [0, 2]] for f in pins]
    offsets += [p - joints[f, 0, [0, 2]] for f, p in zip(t, xz, strict=True)]
    out = joints.copy()
    if times:
        order = np.argsort(times, kind="stable")
        moved = held_curve(np.asarray(times)[order], np.asarray(offsets)[order], frames)
        out[..., [0, 2]] += moved[:, None]
    t, y = targets.root_height()
    if len(t):
        lift = local_curve(t, y - joints[t, 0, 1], frames, width, bounds=(lo - 1, hi))
        out[..., 1] += lift[:, None]
    return out


REACH_SHARE = 0.85  # of a limb's length: a target farther than this from its base moves the body (a rig's
#                     limbs may be a little shorter than the model's: leave them room)


def reach_steps(joints: np.ndarray, targets: Targets, spec: SkeletonSpec = T2M) -> tuple[np.ndarray, np.ndarray]:
    """Ground targets for the pelvis on frames whose joint targets are out of reach of their
    limbs and that say nothing of the pelvis: the body steps towards them just far enough (the
    shortfall on the ground plane, averaged over that frame's targets)."""
    placed = set(targets.root_ground()[0].tolist())
    shifts: dict[int, list[np.ndarray]] = {}
    parents = spec.parents
    for frame, joint, goal in zip(targets.frames.tolist(), targets.joints.tolist(), targets.positions, strict=True):
        if joint == ROOT or frame in placed or not 0 <= frame < len(joints):
            continue
        chain = [joint, parents[joint], parents[parents[joint]]]
        if ROOT in chain[:2]:
            continue
        pose = joints[frame]
        length = REACH_SHARE * sum(np.linalg.norm(pose[a] - pose[parents[a]]) for a in chain[:2])
        base = pose[chain[2]]
        goal = np.where(np.isnan(goal), pose[joint], goal)
        ground = (goal - base)[[0, 2]]
        rise = abs(goal[1] - base[1])
        flat = float(np.sqrt(max(length**2 - rise**2, 0.0)))
        far = float(np.linalg.norm(ground))
        if far > flat and far > 1e-9:
            shifts.setdefault(frame, []).append(ground / far * (far - flat))
    frames = np.array(sorted(shifts), dtype=np.int64)
    steps = np.array([joints[f, 0, [0, 2]] + np.mean(shifts[f], axis=0) for f in frames]).reshape(-1, 2)
    return frames, steps


def smooth_headings(joints: np.ndarray, spec: SkeletonSpec = T2M, sigma: float = 4.0) -> np.ndarray:
    """Per-frame heading without the sway of the arms: the frame the pose corrections live in."""
    return gaussian_smooth(np.unwrap(heading_angles(joints, spec.face_joint_indx)), sigma)

"""The body's part of meeting constraints: bone rotations around keys and reach targets.

Poses are handled in each frame's heading frame (the root on the vertical axis, the body facing
+Z), as bones: a length and a direction per joint. At a constrained frame, each constrained
joint is reached by turning bones in skeleton order: its own bone when its parent is placed, or
its parent's and its own (two-bone IK, bending the way the limb already bends) when not. Each
turn is stored relative to the parent's, so an upper arm's turn carries the forearm with it.
The turns are then spread over neighbouring frames by `local_curve` and composed down the
skeleton at every frame, so the limb eases into the pose and back out of it. What is left (a
target out of reach) is taken up by moving the joint and what hangs off it (`settle`).
"""
from __future__ import annotations

import numpy as np

from ..motion.quaternion import qbetween, qinv, qmul, qrot
from ..motion.rotations import normalize, perpendicular
from ..motion.skeleton import T2M, SkeletonSpec, gaussian_smooth
from .curves import local_curve
from .targets import ROOT, Targets, yaw_matrices

MAX_STRETCH = 0.15   # a bone's length changes at most this share to meet a target; the rest moves joints
CALM_SIGMA = 2.0     # frames: near a pose target, changes quicker than this are smoothed away


def to_heading_frame(joints: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Joints relative to the root's ground point, turned so each frame faces +Z."""
    root = joints[:, :1] * np.array([1.0, 0.0, 1.0])
    return np.einsum("tji,tkj->tki", yaw_matrices(heading), joints - root)


def from_heading_frame(local: np.ndarray, heading: np.ndarray, ground: np.ndarray) -> np.ndarray:
    out = np.einsum("tij,tkj->tki", yaw_matrices(heading), local)
    out[..., [0, 2]] += ground[:, None]
    return out


def bones(local: np.ndarray, spec: SkeletonSpec) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (T, J, 3) and lengths (T, J) of every joint's bone (the root's is zero)."""
    vectors = local - local[:, list(spec.parents)]
    vectors[:, ROOT] = 0.0
    length = np.linalg.norm(vectors, axis=-1)
    unit = vectors / np.maximum(length, 1e-9)[..., None]
    return unit, length


def compose(local: np.ndarray, turns: np.ndarray, stretch: np.ndarray, spec: SkeletonSpec) -> np.ndarray:
    """Frames (T, J, 3) rebuilt from their bones, each turned by its parent's turn followed by
    its own (quaternions turns (T, J, 4)), lengths plus `stretch` (T, J)."""
    unit, length = bones(local, spec)
    parents = spec.parents
    world = np.zeros_like(turns)
    world[:, ROOT] = turns[:, ROOT]
    out = local.copy()
    for j in spec.topological_order:
        world[:, j] = qmul(world[:, parents[j]], turns[:, j])
        out[:, j] = out[:, parents[j]] + qrot(world[:, j], unit[:, j]) * (length[:, j] + stretch[:, j])[:, None]
    return out


class _Frame:
    """One frame's pose while it is being solved: positions, each bone's turn in the world and
    relative to its parent, and stretches. Turning a bone turns its whole subtree about the
    bone's parent joint, so no pass over the skeleton is needed per step."""

    def __init__(self, frame: np.ndarray, spec: SkeletonSpec):
        joints = len(frame)
        self.spec, self.rest = spec, frame
        self.positions = frame.copy()
        self.world = np.tile([1.0, 0.0, 0.0, 0.0], (joints, 1))
        self.own = self.world.copy()
        self.stretch = np.zeros(joints)
        self.below = _descendants(spec)

    def aim(self, joint: int, goal: np.ndarray, allow_stretch: bool) -> None:
        """Turn `joint`'s bone so it points from its parent's place to `goal` (and stretch it
        towards the goal by at most MAX_STRETCH of its length)."""
        parent = self.spec.parents[joint]
        start = self.positions[parent]
        have, want = self.positions[joint] - start, goal - start
        if np.linalg.norm(want) < 1e-9 or np.linalg.norm(have) < 1e-9:
            return
        arc = qbetween(have, want)
        subtree = self.below[joint]
        self.world[subtree] = qmul(arc[None], self.world[subtree])
        self.positions[subtree] = start + qrot(arc[None], self.positions[subtree] - start)
        self.own[joint] = qmul(qinv(self.world[parent]), self.world[joint])
        if allow_stretch:
            rest = np.linalg.norm(self.rest[joint] - self.rest[parent])
            change = float(np.clip(np.linalg.norm(want) - np.linalg.norm(have), -MAX_STRETCH * rest,
                                   MAX_STRETCH * rest))
            self.stretch[joint] += change
            self.positions[subtree] += want / np.linalg.norm(want) * change


def solve_frame(frame: np.ndarray, goals: dict[int, np.ndarray], spec: SkeletonSpec
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turns (J, 4), stretches (J,) and which bones were solved (J,) that bring one frame
    (J, 3, heading frame) onto `goals` (joint → (3,) position, heading frame)."""
    state = _Frame(frame, spec)
    solved = np.zeros(len(frame), bool)
    parents = spec.parents
    for j in spec.topological_order:
        if j not in goals:
            continue
        parent = parents[j]
        if parent != ROOT and parent not in goals:
            at = state.positions
            bend, _ = two_bone(at[parents[parent]], at[parent], at[j], goals[j])
            state.aim(parent, bend, allow_stretch=False)
            solved[parent] = True
        state.aim(j, goals[j], allow_stretch=True)
        solved[j] = True
    return state.own, state.stretch, solved


def two_bone(base: np.ndarray, mid: np.ndarray, tip: np.ndarray, goal: np.ndarray,
             upper=None, lower=None, longest=None) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK on points (..., 3): (where `mid` goes, where the tip then is) so that the chain
    base-mid-tip reaches for `goal` as near as its bone lengths allow, bending in the plane it
    bends in now. A chain straight along the line to the goal bends away from the side the tip
    hangs off it (as it was bent), or across the line when the tip lies on it too.

    `upper` and `lower` (floats or (...)): the bone lengths, by default the chain's own now;
    `longest`: the farthest the chain may reach, by default just short of straight. A goal on
    the base leaves the chain as it is.
    """
    base, mid, tip, goal = (np.asarray(v, np.float64) for v in (base, mid, tip, goal))
    upper = np.asarray(np.linalg.norm(mid - base, axis=-1) if upper is None else upper, np.float64)
    lower = np.asarray(np.linalg.norm(tip - mid, axis=-1) if lower is None else lower, np.float64)
    longest = upper + lower - 1e-6 if longest is None else longest
    reach = goal - base
    distance = np.linalg.norm(reach, axis=-1)
    axis = normalize(reach)
    clipped = np.clip(distance, np.abs(upper - lower) + 1e-6, longest)
    bend = perpendicular(mid - base, axis)
    weak = np.linalg.norm(bend, axis=-1) < 1e-6
    if weak.any():
        bend = np.where(weak[..., None], perpendicular(mid - tip, axis), bend)
        weak = np.linalg.norm(bend, axis=-1) < 1e-6
    if weak.any():
        across = np.where(np.abs(axis[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        bend = np.where(weak[..., None], np.cross(axis, across), bend)
    bend = normalize(bend)
    cos_a = np.clip((upper ** 2 + clipped ** 2 - lower ** 2) / (2 * upper * clipped), -1, 1)
    sin_a = np.sqrt(1 - cos_a ** 2)
    new_mid = base + upper[..., None] * (cos_a[..., None] * axis + sin_a[..., None] * bend)
    reached = base + clipped[..., None] * axis
    still = (distance < 1e-9)[..., None]
    return np.where(still, mid, new_mid), np.where(still, tip, reached)


def log_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) of unit quaternions (shortest way round)."""
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(s, q[..., :1])
    return q[..., 1:] * np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)


def exp_quat(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = angle / 2
    scale = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), v * scale], axis=-1)


def bend_body(local: np.ndarray, targets: Targets, width: float, bounds: tuple[float, float],
              spec: SkeletonSpec = T2M, heading_targets=None) -> np.ndarray:
    """Frames in the heading frame (T, J, 3) with every constrained frame's bones turned onto its
    targets (`heading_targets(frame) -> {joint: (3,)}` gives them in the heading frame), the
    turns eased in and out over `width` frames."""
    frames, joints = local.shape[:2]
    anchors: dict[int, list] = {j: [] for j in range(joints)}
    for frame in targets.constrained_frames():
        goals = {j: p for j, p in heading_targets(int(frame)).items() if j != ROOT}
        if not goals:
            continue
        turns, stretch, solved = solve_frame(local[frame], goals, spec)
        for j in np.flatnonzero(solved):
            anchors[int(j)].append((int(frame), log_quat(turns[j]), stretch[j]))
    turn_field = np.tile([1.0, 0.0, 0.0, 0.0], (frames, joints, 1))
    stretch_field = np.zeros((frames, joints))
    for j, rows in anchors.items():
        if not rows:
            continue
        t = [r[0] for r in rows]
        turn_field[:, j] = exp_quat(local_curve(t, [r[1] for r in rows], frames, width, bounds))
        stretch_field[:, j] = local_curve(t, [r[2] for r in rows], frames, width, bounds)
    return compose(local, turn_field, stretch_field, spec)


def calm_near(joints: np.ndarray, targets: Targets, width: float, bounds: tuple[float, float],
              spec: SkeletonSpec = T2M) -> np.ndarray:
    """The motion with its quickest changes smoothed (over CALM_SIGMA frames) near pose targets,
    fading out over `width` frames, on the constrained joints and the two above each (the ones
    the IK turns). Easing bones into a pose keeps the motion's own jolts (a foot strike, a
    model's jitter) around it, and next to a pose that is met exactly they read as a twitch;
    a motion that is already smooth there changes little."""
    chains: dict[int, set[int]] = {}
    for frame, joint in zip(targets.frames.tolist(), targets.joints.tolist(), strict=True):
        if joint == ROOT:
            continue
        parent = spec.parents[joint]
        chains.setdefault(frame, set()).update(j for j in (joint, parent, spec.parents[parent]) if j > ROOT)
    if not chains:
        return joints
    smooth = gaussian_smooth(joints.reshape(len(joints), -1), CALM_SIGMA).reshape(joints.shape)
    weight = np.zeros(joints.shape[:2])
    for j in range(joints.shape[1]):
        frames = [f for f, members in chains.items() if j in members]
        if frames:
            weight[:, j] = local_curve(frames, np.ones(len(frames)), len(joints), width, bounds)
    blended = joints + weight[..., None] * (smooth - joints)
    # bones take the blended directions and smoothed lengths: a skeleton whose bones keep their
    # length keeps it (smoothing positions alone would shorten bones on a curve)
    unit, _ = bones(blended, spec)
    _, length = bones(joints, spec)
    length = length + weight * (gaussian_smooth(length, CALM_SIGMA) - length)
    out = blended.copy()
    for j in spec.topological_order:
        out[:, j] = out[:, spec.parents[j]] + unit[:, j] * length[:, j, None]
    return out


def settle(joints: np.ndarray, targets: Targets, width: float, bounds: tuple[float, float],
           spec: SkeletonSpec = T2M) -> np.ndarray:
    """What the turns could not reach: each constrained joint (and everything below it in the
    skeleton) moved onto its target, eased over `width` frames; joints in skeleton order so a
    parent's move is counted before its children's."""
    out = joints.copy()
    frames = len(joints)
    below = _descendants(spec)
    for j in (ROOT, *spec.topological_order):
        rows = np.flatnonzero(targets.joints == j)
        if not len(rows):
            continue
        t = targets.frames[rows]
        miss = np.nan_to_num(targets.positions[rows] - out[t, j])
        if np.abs(miss).max() < 1e-7:
            continue
        move = local_curve(t, miss, frames, width, bounds)
        out[:, below[j]] += move[:, None]
    return out


def _descendants(spec: SkeletonSpec) -> dict[int, list[int]]:
    out = {j: [j] for j in range(spec.joints_num)}
    for j in reversed(spec.topological_order):
        parent = spec.parents[j]
        out[parent] = out[parent] + [k for k in out[j] if k not in out[parent]]
    return out

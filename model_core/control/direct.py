"""Meet constraints on generated joints exactly, smoothly, and change nothing far from them.

The analytic pass after the model: turn and move the root (`root`), ease the bones into key poses
and reach targets (`pose`), and move what is still off onto its target (`pose.settle`). Every
change is a smooth curve through the constrained frames (`curves`), so it adds little
acceleration; pose changes fade out `width` frames away from the constraints, root changes
persist (a motion continues from where a waypoint put it). A `span` limits every change to the
frames a range edit regenerated: outside it the motion is returned unchanged.
"""
from __future__ import annotations

import numpy as np

from ..motion.skeleton import T2M, SkeletonSpec
from .pose import bend_body, calm_near, from_heading_frame, settle, to_heading_frame
from .root import heading_change, move_root, smooth_headings, turn_motion
from .targets import Targets, yaw_matrices

WIDTH = 20.0        # frames (1 s at 20 fps) over which a pose change eases in and out
POSE_ROUNDS = 2     # the second round meets what neighbouring keys' easing moved off again


def direct_joints(joints: np.ndarray, targets: Targets, *, span: tuple[int, int] | None = None,
                  width: float = WIDTH, spec: SkeletonSpec = T2M) -> np.ndarray:
    """Joints (T, J, 3) changed to meet `targets` (frames within `span`, default all)."""
    original = np.asarray(joints, np.float64)
    frames = len(original)
    lo, hi = span if span is not None else (0, frames)
    if len(targets) == 0:
        return original.copy()
    pins = [f for f in (lo - 1, hi) if 0 <= f < frames]
    bounds = (lo - 1 if lo > 0 else -np.inf, hi if hi < frames else np.inf)

    calm = calm_near(original, targets, width, bounds, spec)
    turned = turn_motion(calm, heading_change(calm, targets, width, pins, spec))
    moved = move_root(turned, original, targets, width, (lo, hi))
    for _ in range(POSE_ROUNDS):
        heading = smooth_headings(moved, spec)
        ground = moved[:, 0, [0, 2]]
        local = to_heading_frame(moved, heading)

        def goals(frame: int, moved=moved, heading=heading, ground=ground) -> dict[int, np.ndarray]:
            out = {}
            for joint, target in targets.at(frame).items():
                world = np.where(np.isnan(target), moved[frame, joint], target)
                world = world - np.array([ground[frame, 0], 0.0, ground[frame, 1]])
                out[joint] = yaw_matrices(heading[frame]).T @ world
            return out

        local = bend_body(local, targets, width, bounds, spec, goals)
        moved = from_heading_frame(local, heading, ground)
    result = settle(moved, targets, width, bounds, spec)
    if span is not None:  # nothing outside the span moves, not even by rounding
        result[:lo], result[hi:] = original[:lo], original[hi:]
    return result


def errors(joints: np.ndarray, targets: Targets) -> np.ndarray:
    """Distance (N,) of each constraint's joint from its target, on the axes it fixes."""
    got = joints[targets.frames, targets.joints]
    return np.linalg.norm(np.nan_to_num(targets.positions - got), axis=-1)

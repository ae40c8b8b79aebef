"""Constraints applied to a generated batch: checked against it, met by every sample.

The generation calls reach the control package only through here, so the rules for where a
constraint may fall (inside the motion, inside a range edit's regenerated frames) live in one
place.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..errors import ModelError
from ..motion.features import joints_to_features
from ..motion.skeleton import T2M
from .constraints import Constraint, Facing, check_frames, merge_constraints, parse_constraints
from .curves import runs
from .direct import direct_joints
from .targets import Targets


def prepare(constraints, joints_num: int) -> list[Constraint | Facing]:
    """Constraints (a list of `Constraint` and `Facing`, or a parsed JSON document) checked and merged."""
    if constraints is None:
        return []
    if isinstance(constraints, dict) or (isinstance(constraints, list) and constraints
                                         and isinstance(constraints[0], dict)):
        constraints = parse_constraints(constraints)
    if not isinstance(constraints, Sequence) or isinstance(constraints, str):
        raise ModelError(f"constraints must be a list of Constraint, got {type(constraints).__name__}")
    merged = merge_constraints(list(constraints))
    if merged and joints_num != T2M.joints_num:
        raise ModelError(f"constraints name the {T2M.joints_num} HumanML3D joints; this model has {joints_num}")
    return merged


def spans_for(constraints: Sequence[Constraint], editable_frames: np.ndarray) -> list[tuple[tuple[int, int], list]]:
    """The regenerated runs of frames that hold constraints, each with its constraints; a
    constraint on a kept frame is an error (the frames around it would not follow)."""
    found = runs(editable_frames)
    grouped: dict[tuple[int, int], list[Constraint]] = {}
    for c in constraints:
        span = next((s for s in found if s[0] <= c.frame < s[1]), None)
        if span is None:
            where = ", ".join(f"{a}-{b - 1}" for a, b in found) or "none"
            raise ModelError(f"constraint {c.describe()}: frame {c.frame} is not regenerated (regenerated frames: "
                             f"{where}); constrain only frames inside the edited range")
        grouped.setdefault(span, []).append(c)
    return list(grouped.items())


def direct_motion(motion, constraints: Sequence[Constraint], *, editable_frames: np.ndarray | None = None):
    """A copy of `motion` (a `Motion`) whose every sample meets the constraints; features are
    those of the new joints (the dataset's process_file of them, last row repeated).

    `editable_frames` (T,) bool: only these frames may change (a range edit); constraints must
    fall inside them.
    """
    if not constraints:
        return motion
    check_frames(constraints, min(motion.lengths))
    if editable_frames is None:
        groups = [(None, list(constraints))]
    else:
        groups = spans_for(constraints, np.asarray(editable_frames, bool))
    joints = np.array(motion.joints, np.float32)
    features = np.array(motion.features, np.float32)
    for i, frames in enumerate(motion.lengths):
        sample = np.asarray(motion.joints[i, :frames], np.float64)
        for span, group in groups:
            sample = direct_joints(sample, Targets.from_constraints(group), span=span)
        joints[i, :frames] = sample
        rows, _ = joints_to_features(sample)
        features[i, : frames - 1] = rows
        features[i, frames - 1] = rows[-1]
    return dataclasses.replace(motion, joints=joints, features=features)


def meet_constraints(joints: np.ndarray, constraints, *, span: tuple[int, int] | None = None) -> np.ndarray:
    """One motion's joints (T, 22, 3), in any placement, changed to meet `constraints` (given in
    that placement). With `span` (start, end exclusive) only those frames change, and every
    constraint must fall inside them: for callers that hold joints of their own, such as a range
    edit put back into a scene."""
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (T2M.joints_num, 3):
        raise ModelError(f"expected joints of shape (frames, {T2M.joints_num}, 3), got {joints.shape}")
    constraints = prepare(constraints, T2M.joints_num)
    if not constraints:
        return joints.copy()
    check_frames(constraints, len(joints))
    if span is not None:
        editable = np.zeros(len(joints), bool)
        editable[span[0]:span[1]] = True
        spans_for(constraints, editable)
    return direct_joints(joints, Targets.from_constraints(constraints), span=span)

"""The HumanML3D (SMPL) 22-joint skeleton as the retargeting source: names, hierarchy, axes."""
from __future__ import annotations

import numpy as np

from model_core.motion.skeleton import T2M, T2M_BONE_LENGTHS
from model_core.settings import FPS as MODEL_FPS

JOINTS = T2M.joint_names
INDEX = {name: i for i, name in enumerate(JOINTS)}
CHAINS = T2M.kinematic_chain
PARENTS = T2M.parents
# The joint that gives each joint's bone its direction (the next one along its chain).
NEXT = {0: 3, 3: 6, 6: 9, 9: 12, 12: 15, 1: 4, 4: 7, 7: 10, 2: 5, 5: 8, 8: 11,
        13: 16, 16: 18, 18: 20, 14: 17, 17: 19, 19: 21}
FPS = float(MODEL_FPS)

# Joints a rig needs for a meaningful bake: the pelvis and at least the upper legs.
REQUIRED = ("pelvis", "left_hip", "right_hip")

# The uniform skeleton every HumanML3D motion was retargeted to (its bone lengths, in metres) and
# a T-pose built from them: Y up, facing +Z, left is +X.
_LENGTHS = {j: float(T2M_BONE_LENGTHS[j]) for j in range(1, T2M.joints_num)}
_T_DIRECTIONS = {
    1: (1, 0, 0), 2: (-1, 0, 0), 3: (0, 1, 0), 4: (0, -1, 0), 5: (0, -1, 0), 6: (0, 1, 0),
    7: (0, -1, 0), 8: (0, -1, 0), 9: (0, 1, 0), 10: (0, 0, 1), 11: (0, 0, 1), 12: (0, 1, 0),
    13: (1, 0, 0), 14: (-1, 0, 0), 15: (0, 1, 0), 16: (1, 0, 0), 17: (-1, 0, 0), 18: (1, 0, 0),
    19: (-1, 0, 0), 20: (1, 0, 0), 21: (-1, 0, 0),
}
PELVIS_HEIGHT = 0.93  # standing pelvis height of the uniform skeleton (hip, knee, ankle, sole)


def t_pose() -> np.ndarray:
    """Joint positions (22, 3) of the uniform skeleton in a T-pose, HumanML3D axes, feet near y=0."""
    pos = np.zeros((22, 3))
    pos[0] = (0.0, PELVIS_HEIGHT, 0.0)
    for j in range(1, 22):
        pos[j] = pos[PARENTS[j]] + _LENGTHS[j] * np.asarray(_T_DIRECTIONS[j], dtype=float)
    return pos


def bone_length(j: int) -> float:
    """Length (m) of the uniform skeleton's bone from joint j's parent to joint j."""
    return _LENGTHS[j]


def to_blender(joints: np.ndarray) -> np.ndarray:
    """HumanML3D axes (Y up, facing +Z) → Blender axes (Z up, facing -Y): (x, y, z) → (x, -z, y)."""
    j = np.asarray(joints, dtype=np.float64)
    return np.stack([j[..., 0], -j[..., 2], j[..., 1]], axis=-1)


def from_blender(points: np.ndarray) -> np.ndarray:
    """Blender axes → HumanML3D axes, the inverse of `to_blender`."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def check_joints(joints: np.ndarray, what: str = "motion") -> np.ndarray:
    """A (T, 22, 3) joint array as float64: real numbers, at least 2 frames, finite, of plausible size,
    a skeleton whose joints are not all on one point (model_core.inputs.arrays holds the checks)."""
    from model_core.inputs.arrays import check_joints as check

    from ..errors import model_checks

    with model_checks():
        return check(joints, what, joints_num=22, min_frames=2)

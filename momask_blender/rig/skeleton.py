"""The HumanML3D (SMPL) 22-joint skeleton as the retargeting source: names, hierarchy, axes."""
from __future__ import annotations

import numpy as np

from model_core.motion.skeleton import T2M, T2M_BONE_LENGTHS, T2M_T_POSE_OFFSETS
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

# The uniform skeleton every HumanML3D motion was retargeted to, standing in model_core's T-pose
# (Y up, facing +Z, left is +X) with its pelvis this high (hip, knee, ankle, sole; metres).
PELVIS_HEIGHT = 0.93


def t_pose() -> np.ndarray:
    """Joint positions (22, 3) of the uniform skeleton in a T-pose, HumanML3D axes, feet near y=0."""
    pos = np.zeros((22, 3))
    pos[0] = (0.0, PELVIS_HEIGHT, 0.0)
    for j in range(1, 22):
        pos[j] = pos[PARENTS[j]] + T2M_T_POSE_OFFSETS[j]
    return pos


def bone_length(j: int) -> float:
    """Length (m) of the uniform skeleton's bone from joint j's parent to joint j."""
    return float(T2M_BONE_LENGTHS[j])


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

"""Write a motion as a BVH of the HumanML3D skeleton (T-pose rest, Y up, metres), pure NumPy.

The rotations come from the same solver that drives rigs: the skeleton is treated as a rig
whose rest pose is the uniform HumanML3D skeleton in a T-pose.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .plan import local_rotations, plan_rig
from .rest import RigRest
from .retarget import RetargetOptions, retarget
from .rotations import euler_from_matrix
from .skeleton import FPS, JOINTS, PARENTS, from_blender, t_pose, to_blender

BVH_NAMES = ("Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot",
             "RightFoot", "Spine2", "LeftToe", "RightToe", "Neck", "LeftShoulder", "RightShoulder", "Head",
             "LeftArm", "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand")
# Children in the order BVH files of this skeleton list them: legs, then spine; neck, then arms.
_CHILD_ORDER = {0: (1, 2, 3), 9: (12, 13, 14)}
# v_humanml3d = B @ v_blender: (x, y, z) -> (x, z, -y)
_BLENDER_TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def skeleton_rig() -> RigRest:
    """The T-posed HumanML3D skeleton as a RigRest (Blender axes, identity bone orientations)."""
    heads = to_blender(t_pose())
    mats = np.tile(np.eye(4), (22, 1, 1))
    mats[:, :3, 3] = heads
    tails = heads + np.array([0.0, 0.0, 0.05])
    return RigRest(names=JOINTS, parents=np.array(PARENTS), matrices=mats, tails=tails, world=np.eye(4),
                   connected=np.zeros(22, bool), local_location=np.ones(22, bool))


def _children(j: int) -> tuple[int, ...]:
    return _CHILD_ORDER.get(j, tuple(c for c in range(22) if PARENTS[c] == j))


def bvh_text(joints: np.ndarray, fps: float = FPS) -> str:
    """BVH file contents for joints (T, 22, 3), HumanML3D axes, sampled at `fps`."""
    rig = skeleton_rig()
    plan = plan_rig(rig, {j: j for j in JOINTS})
    bake = retarget(joints, plan, RetargetOptions(fps=fps, foot_lock=False), src_fps=fps)
    local = local_rotations(plan, bake.world_rotations, list(range(22)))  # Blender axes
    B = _BLENDER_TO_BVH
    local_bvh = B @ local @ B.T
    eul = np.degrees(np.unwrap(euler_from_matrix(local_bvh, "XYZ"), axis=0))  # R = Rz Ry Rx
    root = from_blender(bake.heads[:, plan.joint_bone[0]])
    rest = t_pose()

    lines = ["HIERARCHY"]
    order: list[int] = []

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        offset = rest[j] - rest[PARENTS[j]] if j else rest[0] * 0
        head = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{head} {BVH_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        channels = "6 Xposition Yposition Zposition " if j == 0 else "3 "
        lines.append(f"{pad}\tCHANNELS {channels}Zrotation Yrotation Xrotation")
        order.append(j)
        kids = _children(j)
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET 0.000000 0.000000 0.000000")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(eul)}", f"Frame Time: {1.0 / fps:.6f}"]
    for f in range(len(eul)):
        vals = [*root[f]]
        for j in order:
            x, y, z = eul[f, j]
            vals += [z, y, x]
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, joints: np.ndarray, fps: float = FPS) -> None:
    Path(path).write_text(bvh_text(joints, fps), encoding="ascii")

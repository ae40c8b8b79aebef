"""Joint positions as a BVH file of the HumanML3D skeleton (T-pose rest, Y up, metres), NumPy only.

BVH stores rotations, not positions. Each joint's rotation turns its bone(s) from the rest pose
onto the motion's: a joint with one child bone takes the shortest turn from where its parent
carried that bone (no twist is invented; positions say nothing about twist). The pelvis and
spine3, where three bones meet, take the frame their bones span; one rotation can only carry
three bones if the rest pose has their real angles, so those bones' rest directions are the
motion's own, averaged in that frame (the hips sit below the pelvis, the collars above spine3),
and every other bone rests as in a T-pose. Forward kinematics of the file then gives every
chain bone the motion's direction, at the uniform skeleton's bone lengths.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .rotations import normalize, swing
from .skeleton import T2M, T2M_BONE_LENGTHS, T2M_T_POSE_DIRECTIONS

BVH_NAMES = ("Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot",
             "RightFoot", "Spine2", "LeftToe", "RightToe", "Neck", "LeftShoulder", "RightShoulder", "Head",
             "LeftArm", "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand")
PARENTS = T2M.parents
# Where bones branch, the joint's frame comes from two of them: (up child, left child, right child).
_BRANCHES = {0: (3, 1, 2), 9: (12, 13, 14)}
_CHILD_ORDER = {0: (1, 2, 3), 9: (12, 13, 14)}  # legs then spine; neck then arms, as BVH files list them


def rest_offsets(joints: np.ndarray | None = None) -> np.ndarray:
    """(22, 3) offset of each joint from its parent at rest (metres; zero for the root): a T-pose,
    with the bones that leave the pelvis and spine3 at the angles they have in `joints` (T, 22, 3)."""
    directions = T2M_T_POSE_DIRECTIONS.copy()
    if joints is not None:
        for j, (up, left, right) in _BRANCHES.items():
            frames = _frame(joints[:, up] - joints[:, j], joints[:, left] - joints[:, right])  # (T, 3, 3)
            for child in (up, left, right):
                local = np.einsum("tji,tj->ti", frames, normalize(joints[:, child] - joints[:, j]))
                directions[child] = normalize(local.mean(0))
    return directions * np.asarray(T2M_BONE_LENGTHS)[:, None]


def _frame(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) whose columns are (left, up, forward) from an up and a left vector."""
    x = normalize(left)
    z = normalize(np.cross(x, up))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def global_rotations(joints: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """(T, 22, 3, 3) rotation of each joint from the rest pose (`rest_offsets`), turning its bones
    onto the motion's."""
    joints = np.asarray(joints, dtype=np.float64)
    frames = len(joints)
    directions = normalize(rest)
    rotations = np.tile(np.eye(3), (frames, 22, 1, 1))
    children: dict[int, list[int]] = {}
    for child, parent in enumerate(PARENTS):
        if parent >= 0:
            children.setdefault(parent, []).append(child)
    for j in (0, *T2M.topological_order):
        inherited = rotations[:, PARENTS[j]] if j else np.tile(np.eye(3), (frames, 1, 1))
        if j in _BRANCHES:
            up, left, right = _BRANCHES[j]
            at_rest = _frame(directions[up][None], (directions[left] - directions[right])[None])
            now = _frame(joints[:, up] - joints[:, j], joints[:, left] - joints[:, right])
            rotations[:, j] = now @ np.swapaxes(at_rest, 1, 2)
        elif len(children.get(j, ())) == 1:
            child = children[j][0]
            carried = np.einsum("tij,j->ti", inherited, directions[child])
            rotations[:, j] = swing(carried, normalize(joints[:, child] - joints[:, j])) @ inherited
        else:  # an end joint: nothing hangs from it, it keeps its parent's turn
            rotations[:, j] = inherited
    return rotations


def euler_zyx(matrices: np.ndarray) -> np.ndarray:
    """Angles (..., 3) in degrees as (z, y, x) with R = Rz @ Ry @ Rx (BVH's 'Zrotation Yrotation Xrotation')."""
    m = np.asarray(matrices)
    y = np.arcsin(np.clip(-m[..., 2, 0], -1.0, 1.0))
    z = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    x = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    locked = np.abs(m[..., 2, 0]) > 1 - 1e-9  # gimbal lock: only z - x (or z + x) is defined
    z = np.where(locked, np.arctan2(-m[..., 0, 1], m[..., 1, 1]), z)
    x = np.where(locked, 0.0, x)
    return np.degrees(np.stack([z, y, x], axis=-1))


def bvh_text(joints: np.ndarray, fps: float = T2M.fps) -> str:
    """BVH file contents for joints (T, 22, 3), HumanML3D axes (Y up, metres), sampled at `fps`."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) < 1:
        raise ModelError(f"a BVH needs joints of shape (frames, 22, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ModelError("joints hold NaN or infinite values: no BVH written")
    if not fps > 0:
        raise ModelError(f"fps must be positive, got {fps}")
    offsets = rest_offsets(joints)
    world = global_rotations(joints, offsets)
    parent_world = world[:, [max(p, 0) for p in PARENTS]]
    local = np.swapaxes(parent_world, -1, -2) @ world
    local[:, 0] = world[:, 0]
    angles = np.unwrap(np.radians(euler_zyx(local)), axis=0)  # no 360-degree jumps between frames
    angles = np.degrees(angles)

    lines, order = ["HIERARCHY"], []

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {BVH_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET " + " ".join(f"{v:.6f}" for v in offsets[j]))
        lines.append(f"{pad}\tCHANNELS {'6 Xposition Yposition Zposition ' if j == 0 else '3 '}"
                     "Zrotation Yrotation Xrotation")
        order.append(j)
        kids = _CHILD_ORDER.get(j, tuple(c for c in range(22) if PARENTS[c] == j))
        for child in kids:
            emit(child, depth + 1)
        if not kids:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET 0.000000 0.000000 0.000000",
                          f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {1.0 / fps:.6f}"]
    values = np.concatenate([joints[:, 0], angles[:, order].reshape(len(joints), -1)], axis=1)
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, joints: np.ndarray, fps: float = T2M.fps, what: str = "BVH file") -> Path:
    """Write `bvh_text` to `path` whole or not at all (inputs.paths: a temporary file renamed over it,
    so a full disk leaves the old file; a folder, device or symbolic link at `path` is refused)."""
    from ..inputs.paths import write_text

    return write_text(path, bvh_text(joints, fps), what, encoding="ascii")

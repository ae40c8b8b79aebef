"""Reach targets met on the rig itself, after retargeting (pure NumPy).

The model puts a wrist or an ankle on its target, but a rig's arms and legs are not the uniform
skeleton's scaled: its hand would land a few centimetres off. Here the baked limb (upper arm and
forearm, or thigh and shin) is turned by two-bone IK, on the rig's own bones, so the bone's
head touches the target on its frame; the turn eases in and out over neighbouring frames and
carries everything below the limb (hand, fingers, foot) with it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from model_core.control.curves import smoothstep
from model_core.control.pose import two_bone
from model_core.motion.rotations import axis_angle, swing

from .plan import RigPlan, forward_kinematics, ik_locations, local_rotations
from .rest import subtree
from .retarget import Bake
from .rotations import axis_and_angle, continuous_quats, matrix_to_quat

# joint → (limb root, middle) joints: the two bones that turn to put the joint on its target
LIMBS = {20: (16, 18), 21: (17, 19), 7: (1, 4), 8: (2, 5)}


def reach_on_rig(bake: Bake, plan: RigPlan, reaches, width: float, fixed=()) -> Bake:
    """The bake with each reach (output frame, joint, world target (3,)) met by the rig's limb.

    The turn fades out `width` frames away, or sooner at a `fixed` frame (a keyed pose the bake
    already meets). A limb the bone map does not cover bone for bone is left as the retarget made it."""
    jb = plan.joint_bone
    Q = bake.world_rotations.copy()
    offset = bake.heads[:, plan.mover] - forward_kinematics(plan, bake.world_rotations, np.zeros((bake.frames, 3)))[
        :, plan.mover]
    changed = False
    for frame, joint, target in reaches:
        if joint not in LIMBS or not all(j in jb for j in (*LIMBS[joint], joint)):
            continue
        k = int(round(frame))
        if not 0 <= k < bake.frames:
            continue
        root, middle = (jb[j] for j in LIMBS[joint])
        heads = forward_kinematics(plan, Q[k:k + 1], offset[k:k + 1])[0]
        base, mid, tip = heads[root], heads[middle], heads[jb[joint]]
        goal = np.asarray(target, np.float64)
        new_mid, _ = two_bone(base, mid, tip, goal)
        first = swing(mid - base, new_mid - base)
        turned_tip = new_mid + first @ (tip - mid)
        second = swing(turned_tip - new_mid, goal - new_mid)
        weight = _ease(bake.frames, k, width, fixed)
        _turn(Q, plan, root, *axis_and_angle(first), weight)
        _turn(Q, plan, middle, *axis_and_angle(second), weight)
        changed = True
    if not changed:
        return bake
    for bone, driver in plan.keyed.items():  # as the retarget ends: driven bones' drivers turn with them
        Q[:, driver] = Q[:, bone]
    heads = forward_kinematics(plan, Q, offset)
    quats = continuous_quats(matrix_to_quat(local_rotations(plan, Q, plan.key_bones)), axis=0)
    locations = {plan.rig.names[b]: v for b, v in ik_locations(plan, Q, heads).items()}
    return dataclasses.replace(bake, quats=quats, world_rotations=Q, heads=heads, locations=locations)


def _ease(frames: int, at: int, width: float, fixed=()) -> np.ndarray:
    """1 at `at`, 0 from `width` frames away (or from the nearest `fixed` frame on either side),
    smoothstep between (C1 where it starts and ends)."""
    before = max([at - width] + [f for f in fixed if f < at])
    after = min([at + width] + [f for f in fixed if f > at])
    t = np.arange(frames, dtype=np.float64)
    return smoothstep(np.where(t <= at, (t - before) / max(at - before, 1e-9), (after - t) / max(after - at, 1e-9)))


def _turn(Q: np.ndarray, plan: RigPlan, bone: int, axis: np.ndarray, angle: float, weight: np.ndarray) -> None:
    """Turn `bone` and every bone below it by weight × angle about `axis` (world), per frame."""
    below = subtree(plan.rig.parents, bone)
    turns = axis_angle(np.broadcast_to(axis, (len(weight), 3)), weight * angle)   # (F, 3, 3)
    Q[:, below] = turns[:, None] @ Q[:, below]

"""Retarget 22 HumanML3D joint positions onto any armature (pure NumPy, no bpy).

The rig arrives as `RigRest` (each bone's rest matrix in armature space, its parent, the
object's world matrix) plus a bone map. For every mapped joint we solve, per frame, a *world
delta* Q: the rotation that takes the bone from its rest pose to its pose now. Its direction
comes from the source segment (joint → next mapped joint on the chain), measured against the
rig's own rest segment, so T-pose, A-pose, rolls and axes of the rig don't matter; its twist is
the smallest swing from the parent's delta, corrected with a second axis (hips from the hip
line, chest and neck from the shoulders, thighs and upper arms from the plane the knee/elbow
bends in). Unmapped bones follow their parent rigidly. A bone's keyable local rotation is then
``R_b^T (Q_parent^T Q_b) R_b`` with R_b its rest orientation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_core.motion.rotations import axis_angle, normalize, perpendicular, swing

from ..errors import MomaskError
from . import feet
from .plan import (
    SOURCE_LEG,
    SPINE_SIDE_BLEND,
    UP,
    RigPlan,
    forward_kinematics,
    ik_locations,
    local_rotations,
    mover_location,
)
from .resample import resample
from .rotations import continuous_quats, frame, matrix_to_quat, signed_angle
from .skeleton import FPS, JOINTS, NEXT, PARENTS, PELVIS_HEIGHT, check_joints, to_blender

ROOT_MOTIONS = ("full", "in-place", "keep")
# How strongly a thigh/upper arm keeps its parent-relative twist against the knee/elbow bend
# plane: the plane wins once the joint bends more than about asin(0.3) ≈ 17°.
BEND_HINT_WEIGHT = 0.3


@dataclass(frozen=True)
class RetargetOptions:
    fps: float = FPS                 # the scene's frame rate (fps / fps_base)
    root_motion: str = "full"        # full | in-place | keep
    foot_lock: bool = True
    placed: bool = False             # the joints are in rig space (a directed motion): no re-placing

    def __post_init__(self):
        if self.root_motion not in ROOT_MOTIONS:
            raise MomaskError(f"root motion must be one of {ROOT_MOTIONS}, got {self.root_motion!r}")
        from model_core.inputs.timing import frame_rate

        from ..errors import model_checks

        with model_checks():
            frame_rate(self.fps, "the scene's frame rate")


@dataclass
class Bake:
    """The result: keyable local rotations and the root bone's location, per output frame."""

    bone_names: list[str]           # bones that get rotation keys (the mapped ones, or their drivers)
    quats: np.ndarray               # (F, K, 4) local rotations w, x, y, z, sign-continuous
    root_bone: str | None
    root_location: np.ndarray | None  # (F, 3) the mover's local location
    world_rotations: np.ndarray     # (F, N, 3, 3) world deltas of every bone
    heads: np.ndarray               # (F, N, 3) world positions of every bone head
    contacts: np.ndarray            # (F, 2) planted left/right heels (source-based)
    scale: float                    # rig leg length / source leg length
    fps: float
    source: np.ndarray              # (F, 22, 3) the source joints as retargeted (Blender axes, aligned)
    ball_contacts: np.ndarray | None = None  # (F, 2) planted left/right balls of the feet (source-based)
    locations: dict[str, np.ndarray] = field(default_factory=dict)  # IK targets and poles → location (F, 3)

    @property
    def frames(self) -> int:
        return len(self.quats)


# ----------------------------------------------------------------------------- solving


MIN_LEG_SHARE = 0.02  # a source leg shorter than this share of the body's reach has collapsed


def source_leg_length(J: np.ndarray) -> float:
    legs = [np.linalg.norm(J[:, k] - J[:, h], axis=-1) + np.linalg.norm(J[:, a] - J[:, k], axis=-1)
            for h, k, a in ((1, 4, 7), (2, 5, 8))]
    return float(np.median(np.concatenate(legs)))


def align_source(J: np.ndarray, plan: RigPlan) -> np.ndarray:
    """Source joints (Blender axes) turned to face the way the rig faces, starting at the origin."""
    side = J[0, 1] - J[0, 2]
    side[2] = 0.0
    src_forward = normalize(np.cross(normalize(side), UP))
    angle = np.arctan2(np.cross(src_forward, plan.forward)[2], src_forward @ plan.forward)
    rot = axis_angle(UP, np.array(angle))
    start = J[0, 0].copy()
    start[2] = 0.0
    return (J - start) @ rot.T


def _twist_to(Q: np.ndarray, axis: np.ndarray, rest_vec: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Turn Q about `axis` so that Q @ rest_vec points along `hint` (both seen across the axis)."""
    v = Q @ rest_vec
    angle = signed_angle(v, hint, axis)
    return axis_angle(axis, angle) @ Q


def solve_rotations(J: np.ndarray, plan: RigPlan) -> np.ndarray:
    """World deltas (F, N, 3, 3) for every bone of the rig, from aligned source joints (F, 22, 3)."""
    F = len(J)
    N = len(plan.rig.names)
    eye = np.broadcast_to(np.eye(3), (F, 3, 3))
    Qj: dict[int, np.ndarray] = {}
    src_left = normalize(J[:, 1] - J[:, 2])
    src_shoulders = normalize(J[:, 16] - J[:, 17])
    torso_dirs = _torso_directions(J, plan)
    for seg in plan.segments:
        j = seg.joint
        parent_Q = Qj.get(seg.parent_joint, eye)
        if seg.mode == "root":
            rest_left = plan.left if (1 not in plan.joint_bone or 2 not in plan.joint_bone) else \
                normalize(plan.heads[plan.joint_bone[1]] - plan.heads[plan.joint_bone[2]])
            if 0 in torso_dirs:
                c = plan.torso[1]
                rest_up = normalize(plan.heads[plan.joint_bone[c]] - plan.heads[seg.bone])
                src_up = torso_dirs[0]
            else:
                rest_up, src_up = UP, np.broadcast_to(UP, (F, 3))
            F_rest = frame(rest_up, rest_left)
            F_src = frame(src_up, src_left)
            Qj[j] = F_src @ F_rest.T
            continue
        if seg.mode == "inherit":
            Qj[j] = parent_Q
            continue
        alias = plan.torso_alias.get(j, j)
        d = torso_dirs[alias] if alias in torso_dirs else normalize(J[:, seg.target] - J[:, j])
        Q = swing(parent_Q @ seg.rest_dir, d) @ parent_Q
        name = JOINTS[j]
        if j in plan.side_hints and name in SPINE_SIDE_BLEND:
            w = SPINE_SIDE_BLEND[name]
            hint = src_left * (1 - w) + src_shoulders * w
            Q = _twist_to(Q, d, plan.side_hints[j], hint)
        elif j in (1, 2, 16, 17) and seg.target == NEXT[j]:
            below = NEXT[seg.target]
            if below in plan.joint_bone and below is not None:
                lower = normalize(J[:, below] - J[:, seg.target])
                bend = perpendicular(-lower, d)  # where the knee / elbow points, |.| = sin(bend)
                rest = plan.forward if j in (1, 2) else -plan.forward
                v = normalize(perpendicular(Q @ rest, d))
                Q = _twist_to(Q, d, rest, BEND_HINT_WEIGHT * v + bend)
        Qj[j] = Q

    # Every bone: its joint's delta, or its parent's (unmapped bones ride along rigidly).
    by_bone = {seg.bone: Qj[seg.joint] for seg in plan.segments}
    for bone, driver in plan.keyed.items():  # a driver turns as the bone it drives should
        by_bone.setdefault(driver, by_bone[bone])
    out = np.empty((F, N, 3, 3))
    for b in range(N):
        if b in by_bone:
            out[:, b] = by_bone[b]
        elif plan.rig.parents[b] >= 0:
            out[:, b] = out[:, plan.rig.parents[b]]
        else:
            out[:, b] = np.eye(3)
    return out


def _torso_directions(J: np.ndarray, plan: RigPlan) -> dict[int, np.ndarray]:
    """Directions of the rig's torso segments: chords of the source spine curve, cut where the
    rig's own joints sit along its spine (so a short rig pelvis segment doesn't bend the back)."""
    if len(plan.torso) < 2:
        return {}
    end = plan.torso[-1]
    chain = [0]
    while chain[-1] != end:
        chain.append(NEXT[chain[-1]])
    pts = J[:, chain]                                           # (F, K, 3) the source curve
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=-1)        # (F, K-1)
    arc = np.concatenate([np.zeros((len(J), 1)), np.cumsum(seg, axis=1)], axis=1)
    total = np.maximum(arc[:, -1:], 1e-9)
    frac = arc / total
    points = []
    for f in plan.torso_fractions:
        k = np.clip((frac < f - 1e-12).sum(axis=1) - 1, 0, len(chain) - 2)  # segment holding f
        rows = np.arange(len(J))
        a, b = frac[rows, k], frac[rows, k + 1]
        w = np.where(b > a, (f - a) / np.maximum(b - a, 1e-12), 0.0)[:, None]
        points.append(pts[rows, k] * (1 - w) + pts[rows, k + 1] * w)
    return {j: normalize(points[i + 1] - points[i]) for i, j in enumerate(plan.torso[:-1])}


def _foot_points(plan: RigPlan, heads: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """(F, K) heights of the rig's lowest leg points per frame (ankles and toes, or leg tips)."""
    jb = plan.joint_bone
    bones = [jb[j] for j in (7, 8, 10, 11) if j in jb]
    if bones:
        return heads[:, bones, 2]
    tips = []
    for j in (4, 5, 1, 2):
        if j in jb:
            b = jb[j]
            vec = plan.rig.tails_world[b] - plan.heads[b]
            tips.append(heads[:, b, 2] + (Q[:, b] @ vec)[:, 2])
    return np.stack(tips, axis=1) if tips else heads[:, [jb[0]], 2]


def _rest_foot_height(plan: RigPlan) -> float:
    jb = plan.joint_bone
    bones = [jb[j] for j in (7, 8, 10, 11) if j in jb]
    if bones:
        return float(plan.heads[bones, 2].min())
    tails = [plan.rig.tails_world[jb[j], 2] for j in (4, 5, 1, 2) if j in jb]
    return float(min(tails)) if tails else float(plan.heads[jb[0], 2] - plan.leg_length)


def retarget(joints: np.ndarray, plan: RigPlan, options: RetargetOptions = RetargetOptions(),
             src_fps: float = FPS) -> Bake:
    """Bake source joints (T, 22, 3; HumanML3D axes, metres, `src_fps`) onto the planned rig."""
    J = to_blender(resample(check_joints(joints), src_fps, options.fps))
    if options.placed:  # rig space (see rig.directing): the place and the size are already the rig's
        scale = plan.leg_length / SOURCE_LEG
    else:
        J = align_source(J, plan)
        source_leg = source_leg_length(J)
        if not source_leg > MIN_LEG_SHARE * float(np.abs(J - J[:, :1]).max()):
            raise MomaskError(f"the motion's legs have no length (hip to ankle: {source_leg:.3g}): its hips, knees "
                              "and ankles sit on one point, so it cannot be scaled to the rig")
        scale = plan.leg_length / source_leg
    F = len(J)

    Q = solve_rotations(J, plan)
    pelvis = plan.joint_bone[0]
    target = np.empty((F, 3))
    if options.root_motion == "full":
        target[:, :2] = (0.0 if options.placed else plan.heads[pelvis, :2]) + scale * J[:, 0, :2]
    else:
        target[:, :2] = plan.heads[pelvis, :2]
    if options.placed:  # heights from the rest pelvis, as rig space measures them
        target[:, 2] = plan.heads[pelvis, 2] + scale * (J[:, 0, 2] - PELVIS_HEIGHT)
        offset = target - plan.heads[pelvis]
    else:
        target[:, 2] = scale * J[:, 0, 2]
        # Mover displacement with the pelvis height still uncalibrated, then set the feet on the floor.
        offset = target - plan.heads[pelvis]
        heads = forward_kinematics(plan, Q, offset)
        low = _foot_points(plan, heads, Q).min(axis=1)
        offset[:, 2] += _rest_foot_height(plan) - np.percentile(low, 5)
    heads = forward_kinematics(plan, Q, offset)

    planted = feet.detect_points(J, options.fps)
    if options.foot_lock and options.root_motion == "full":
        Q, offset = feet.lock_feet(plan, Q, heads, planted, options.fps, offset)
        heads = forward_kinematics(plan, Q, offset)

    for bone, driver in plan.keyed.items():  # the lock turned driven bones: their drivers turn with them
        Q[:, driver] = Q[:, bone]
    bones = plan.key_bones
    local = local_rotations(plan, Q, bones)
    quats = continuous_quats(matrix_to_quat(local), axis=0)
    root_loc = mover_location(plan, offset)
    return Bake(bone_names=[plan.rig.names[b] for b in bones], quats=quats,
                root_bone=plan.rig.names[plan.mover], root_location=root_loc, world_rotations=Q,
                heads=heads, contacts=planted[:, :, 0], scale=scale, fps=options.fps, source=J,
                ball_contacts=planted[:, :, 1],
                locations={plan.rig.names[b]: v for b, v in ik_locations(plan, Q, heads).items()})


# ----------------------------------------------------------------------------- inverse


def joints_from_pose(plan: RigPlan, Q: np.ndarray, pelvis_world: np.ndarray) -> np.ndarray:
    """Inverse retarget: 22 joints (F, 22, 3) in HumanML3D proportions, Blender axes, metres.

    `Q` (F, N, 3, 3) are the rig's world deltas (pose orientation × rest orientationᵀ, world
    axes) and `pelvis_world` the pelvis bone's head. Mapped segments give the directions
    exactly; unmapped joints follow the nearest mapped ancestor, in the uniform skeleton's
    T-pose directions expressed in the rig's body frame. The pelvis path is divided by the same
    leg-length scale that the forward bake multiplies it with.
    """
    from .skeleton import bone_length, t_pose

    F = len(Q)
    rest = to_blender(t_pose())
    body = np.stack([plan.left, -plan.forward, UP], axis=1)  # Blender-axes T-pose → rig body frame
    rest = rest @ body.T
    jb = plan.joint_bone
    seg_of = {s.joint: s for s in plan.segments}
    scale = plan.leg_length / SOURCE_LEG
    out = np.zeros((F, 22, 3))
    out[:, 0] = (pelvis_world - plan.heads[jb[0]]) / scale
    out[:, 0, :2] += plan.heads[jb[0], :2] / scale
    out[:, 0, 2] += rest[0, 2]
    for j in range(1, 22):
        p = PARENTS[j]
        owner = p
        while owner >= 0 and owner not in jb:
            owner = PARENTS[owner]
        Qp = Q[:, jb[owner]] if owner >= 0 else np.broadcast_to(np.eye(3), (F, 3, 3))
        direction = None
        # On a mapped segment (the owner aims at a joint further down this chain): its direction.
        seg = seg_of.get(owner)
        if seg is not None and seg.mode == "segment" and _on_chain(owner, seg.target, j):
            direction = Qp @ seg.rest_dir
        if direction is None:
            direction = Qp @ normalize(rest[j] - rest[p])
        out[:, j] = out[:, p] + bone_length(j) * normalize(direction)
    return out


def _on_chain(start: int, end: int, j: int) -> bool:
    c = NEXT.get(start)
    while c is not None:
        if c == j:
            return True
        if c == end:
            return False
        c = NEXT.get(c)
    return False

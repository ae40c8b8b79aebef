"""What a bake knows about a rig before it sees a motion: the plan (pure NumPy, no bpy).

`plan_rig` turns a rest pose and a bone map into segments (which source direction each mapped
bone follows), the rig's facing, its leg length, the bone that carries the root motion (the
mover), the bones that take the keys (a bone whose rotation a constraint copies from another
bone is keyed through that driver), and the points of each foot that may be pinned (heel, ball).
Forward kinematics and the keyable local rotations live here too, below both the solver
(`retarget`) and the foot lock (`feet`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_core.motion.rotations import normalize

from ..errors import MomaskError
from .rest import RigRest, ancestors, lowest_common, subtree
from .rotations import polar_rotation
from .skeleton import INDEX, NEXT, PARENTS, PELVIS_HEIGHT

UP = np.array([0.0, 0.0, 1.0])
SOURCE_LEG = 0.82  # hip → knee → ankle of the uniform HumanML3D skeleton (m)
# Share of the shoulder line (vs the hip line) in each spine joint's side axis.
SPINE_SIDE_BLEND = {"spine1": 0.33, "spine2": 0.66, "spine3": 1.0, "neck": 1.0}
# For a bone whose chain below is unmapped (a blocky limb), the joint its direction aims at.
LIMB_END = {1: 7, 4: 7, 2: 8, 5: 8, 13: 20, 16: 20, 18: 20, 14: 21, 17: 21, 19: 21,
            0: 15, 3: 15, 6: 15, 9: 15, 12: 15}
FLOOR_ROOT = 0.05  # of the rig's height: a bone whose head is this close to the floor is no body part
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))  # hip, knee, ankle, toe per side


@dataclass
class Segment:
    joint: int
    bone: int
    mode: str                 # "root" | "segment" | "inherit"
    target: int = -1          # source joint the bone aims at
    rest_dir: np.ndarray = field(default_factory=lambda: np.zeros(3))  # world, unit
    parent_joint: int = -1    # nearest mapped source ancestor


@dataclass
class Foot:
    """One leg's bones and the points of its foot that a lock may pin (world rest positions, both
    riding on the ankle bone)."""

    side: int                 # 0 left, 1 right
    hip: int
    knee: int
    ankle: int
    heel: np.ndarray          # the ankle joint
    ball: np.ndarray | None   # the ball of the foot (toe bone's head, or the toes' start)


@dataclass(frozen=True)
class IKGoal:
    """An IK constraint whose chain holds mapped bones: the bake keys its target (and pole) so the
    chain lands where the motion has it."""

    target: int
    owner: int
    use_tail: bool
    pole: int          # -1 without a pole
    root: int          # the chain's top bone: the pole keeps its place relative to it


@dataclass
class RigPlan:
    """Everything about the rig that does not depend on the motion."""

    rig: RigRest
    bone_map: dict[str, str]
    joint_bone: dict[int, int]      # source joint index → rig bone index
    segments: list[Segment]         # mapped joints, parents first
    heads: np.ndarray               # (N, 3) world rest heads
    left: np.ndarray                # unit: the rig's left, horizontal
    forward: np.ndarray             # unit: the way the rig faces, horizontal
    leg_length: float               # world units, for scaling the root path
    mover: int                      # the bone whose location carries the root motion
    side_hints: dict[int, np.ndarray]  # spine joints: rest side axis (world)
    torso: list[int] = field(default_factory=list)  # mapped joints pelvis → neck, in order
    torso_fractions: np.ndarray = field(default_factory=lambda: np.zeros(0))  # their arc positions
    torso_alias: dict[int, int] = field(default_factory=dict)  # spine joint sharing a torso joint's head → it
    keyed: dict[int, int] = field(default_factory=dict)  # mapped bone → the bone that takes its keys
    feet: list[Foot] = field(default_factory=list)
    ik_goals: list[IKGoal] = field(default_factory=list)

    @property
    def key_bones(self) -> list[int]:
        """The bones that get rotation keys, in segment order (a driven bone's driver stands in)."""
        return [self.keyed.get(s.bone, s.bone) for s in self.segments]


def _dist(heads, a, b) -> float:
    return float(np.linalg.norm(heads[a] - heads[b]))


def plan_rig(rig: RigRest, bone_map: dict[str, str]) -> RigPlan:
    idx = rig.index
    jb = {INDEX[j]: idx[b] for j, b in bone_map.items() if j in INDEX and b in idx}
    if INDEX["pelvis"] not in jb:
        raise MomaskError("the bone map has no bone for pelvis")
    heads = rig.heads_world
    tails = rig.tails_world
    height = max(float(np.ptp(np.concatenate([heads, tails])[:, 2])), 1e-6)
    eps = 1e-3 * height
    left = _rig_left(heads, jb, eps)
    segments = _segments(heads, tails, jb, eps)
    torso, fractions = _torso(heads, jb, segments, eps)
    # A spine bone that starts where a torso joint does (MMD's 上半身 at 下半身's head) carries that
    # torso segment: it follows the segment's direction.
    alias = {j: t for j in (3, 6, 9) if j in jb and j not in torso
             for t in torso if _dist(heads, jb[j], jb[t]) <= eps}
    hip_line = _line(heads, jb, "left_hip", "right_hip", left)
    shoulder_line = _line(heads, jb, "left_shoulder", "right_shoulder", None)
    if shoulder_line is None:
        shoulder_line = _line(heads, jb, "left_collar", "right_collar", hip_line)
    side_hints = {INDEX[j]: normalize(hip_line * (1 - w) + shoulder_line * w) for j, w in SPINE_SIDE_BLEND.items()}
    forward = normalize(np.cross(left, UP))
    return RigPlan(rig=rig, bone_map=dict(bone_map), joint_bone=jb, segments=segments, heads=heads,
                   left=left, forward=forward,
                   leg_length=_rig_leg_length(heads, tails, jb, height), mover=_mover(rig, heads, jb, height),
                   side_hints=side_hints, torso=torso, torso_fractions=fractions, torso_alias=alias,
                   keyed=_keyed(rig, jb),
                   feet=_feet(rig, heads, jb, height, forward), ik_goals=_ik_goals(rig, jb))


def _rig_left(heads, jb, eps) -> np.ndarray:
    """The rig's left, horizontal: from the hips (or shoulders, collars, ankles)."""
    for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
                 ("left_collar", "right_collar"), ("left_ankle", "right_ankle")):
        if INDEX[a] in jb and INDEX[b] in jb:
            v = heads[jb[INDEX[a]]] - heads[jb[INDEX[b]]]
            v[2] = 0.0
            if np.linalg.norm(v) > eps:
                return normalize(v)
    return np.array([1.0, 0.0, 0.0])


def _segments(heads, tails, jb, eps) -> list[Segment]:
    """Per mapped joint: aim at the next mapped joint down its chain whose head is apart from ours."""
    segments: list[Segment] = []
    for j in range(22):
        if j not in jb:
            continue
        b = jb[j]
        parent_joint = PARENTS[j]
        while parent_joint >= 0 and parent_joint not in jb:
            parent_joint = PARENTS[parent_joint]
        seg = Segment(joint=j, bone=b, mode="inherit", parent_joint=parent_joint)
        c = NEXT.get(j)
        while c is not None:
            if c in jb and _dist(heads, jb[c], b) > eps:
                seg.mode, seg.target = "segment", c
                seg.rest_dir = normalize(heads[jb[c]] - heads[b])
                break
            c = NEXT.get(c)
        if seg.mode == "inherit" and j in LIMB_END and j != 0:
            # A limb without mapped joints below: the bone itself stands for the whole limb.
            tail_dir = tails[b] - heads[b]
            if np.linalg.norm(tail_dir) > eps:
                seg.mode, seg.target, seg.rest_dir = "segment", LIMB_END[j], normalize(tail_dir)
        if j == 0:
            seg.mode = "root"
        segments.append(seg)
    return segments


def _torso(heads, jb, segments, eps) -> tuple[list[int], np.ndarray]:
    """The mapped joints from the pelvis up to the neck, each aiming at the next, and where each
    sits along that arc (0 at the pelvis, 1 at the top)."""
    torso = [0]
    by_joint = {s.joint: s for s in segments}
    while by_joint[torso[-1]].mode in ("segment", "root") and by_joint[torso[-1]].target in (3, 6, 9, 12):
        torso.append(by_joint[torso[-1]].target)
    if len(torso) == 1:
        c = NEXT[0]
        while c is not None and c not in jb:
            c = NEXT.get(c)
        if c is not None and _dist(heads, jb[c], jb[0]) > eps:
            torso.append(c)
    pieces = [_dist(heads, jb[a], jb[b]) for a, b in zip(torso, torso[1:], strict=False)]
    arc = np.concatenate([[0.0], np.cumsum(pieces)])
    return torso, (arc / arc[-1] if arc[-1] > 0 else arc)


def _line(heads, jb, a, b, default):
    if INDEX[a] in jb and INDEX[b] in jb:
        v = heads[jb[INDEX[a]]] - heads[jb[INDEX[b]]]
        if np.linalg.norm(v) > 1e-9:
            return normalize(v)
    return default


def _rig_leg_length(heads, tails, jb, height) -> float:
    """Hip → knee → ankle of the rig at rest (mean of both sides), with fallbacks for blocky rigs."""
    lengths = []
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        if hip in jb and knee in jb and ankle in jb:
            lengths.append(_dist(heads, jb[hip], jb[knee]) + _dist(heads, jb[knee], jb[ankle]))
        elif hip in jb and ankle in jb:
            lengths.append(_dist(heads, jb[hip], jb[ankle]))
    if lengths:
        return float(np.mean(lengths))
    # No knees or ankles: scale by standing pelvis height instead (the source's, in leg terms).
    floor = min(heads[:, 2].min(), tails[:, 2].min())
    pelvis_height = heads[jb[0], 2] - floor
    return float(pelvis_height * SOURCE_LEG / PELVIS_HEIGHT) if pelvis_height > 0 else height * 0.5


def _mover(rig: RigRest, heads: np.ndarray, jb: dict[int, int], height: float) -> int:
    """The bone whose location moves the whole body: the lowest common ancestor of the pelvis,
    hips and spine bones (above the pelvis when the rig splits it into a lower and an upper
    body, as MMD's 下半身/上半身 under センター), raised to the topmost ancestor that is still
    off the floor (never a floor root) and that can move (not connected to its parent)."""
    body = [jb[j] for j in (0, 1, 2, 3, 6, 9, 12) if j in jb]  # the pelvis first
    mover = lowest_common(rig.parents, body)
    mover = jb[0] if mover is None else mover
    floor = float(heads[:, 2].min())
    for a in ancestors(rig.parents, mover):
        if heads[a, 2] - floor < FLOOR_ROOT * height:
            break
        mover = a
    while rig.connected[mover] and rig.parents[mover] >= 0:
        mover = int(rig.parents[mover])
    return mover


def _keyed(rig: RigRest, jb: dict[int, int]) -> dict[int, int]:
    """Mapped bones whose rotation a constraint copies from another bone → that driver (followed
    through chains of drivers); keys on the driven bone would be overridden."""
    out = {}
    mapped = set(jb.values())
    for b in mapped:
        d, seen = int(rig.drivers[b]), {b}
        while d >= 0 and d not in seen:
            seen.add(d)
            nxt = int(rig.drivers[d])
            if nxt < 0:
                break
            d = nxt
        if d >= 0 and d not in mapped:
            out[b] = d
    return out


def _ik_goals(rig: RigRest, jb: dict[int, int]) -> list[IKGoal]:
    """IK constraints that drive mapped bones, their targets parents first."""
    mapped = set(jb.values())
    goals = []
    for link in rig.iks:
        chain = [link.owner] + ancestors(rig.parents, link.owner)
        chain = chain[: link.chain] if link.chain > 0 else chain
        if not mapped & set(chain) or link.target in mapped or link.target in chain:
            continue
        if link.target in ancestors(rig.parents, link.owner):
            continue  # a target above its own chain would move with it
        goals.append(IKGoal(link.target, link.owner, link.use_tail, link.pole, chain[-1]))
    return sorted(goals, key=lambda g: g.target)


def _feet(rig: RigRest, heads: np.ndarray, jb: dict[int, int], height: float, forward: np.ndarray) -> list[Foot]:
    """Per leg with hip, knee and ankle: the heel (ankle joint) and the ball of the foot (the toe
    bone's head, or where the ankle bone's children start, when they lie forward and low)."""
    out = []
    for side, (hip, knee, ankle, toe) in enumerate(LEGS):
        if not all(j in jb for j in (hip, knee, ankle)):
            continue
        a = jb[ankle]
        ball = heads[jb[toe]].copy() if toe in jb else None
        if ball is None:
            kids = [c for c in range(len(rig.names)) if rig.parents[c] == a]
            low = [heads[c] for c in kids if heads[c, 2] <= heads[a, 2] and
                   (heads[c] - heads[a]) @ forward > 0.02 * height]
            ball = np.mean(low, axis=0) if low else None
        out.append(Foot(side, jb[hip], jb[knee], a, heads[a].copy(), ball))
    return out


def forward_kinematics(plan: RigPlan, Q: np.ndarray, root_offset: np.ndarray) -> np.ndarray:
    """World heads (F, N, 3) from world deltas and the mover's world displacement (F, 3)."""
    F, N = Q.shape[:2]
    heads = np.empty((F, N, 3))
    rest = plan.heads
    parents = plan.rig.parents
    for b in range(N):
        p = parents[b]
        if p < 0:
            heads[:, b] = rest[b]
        else:
            heads[:, b] = heads[:, p] + Q[:, p] @ (rest[b] - rest[p])
        if b == plan.mover:
            heads[:, b] += root_offset
    return heads


def local_rotations(plan: RigPlan, Q: np.ndarray, bones: list[int]) -> np.ndarray:
    """Keyable rotations (F, K, 3, 3) of `bones`: R^T (Qp^T Q) R in armature space."""
    A = plan.rig.rotation
    R = plan.rig.matrices[:, :3, :3]
    out = []
    for b in bones:
        p = plan.rig.parents[b]
        rel = Q[:, b] if p < 0 else np.swapaxes(Q[:, p], -1, -2) @ Q[:, b]
        rel_arm = A.T @ rel @ A
        Rb = polar_rotation(R[b])
        out.append(Rb.T @ rel_arm @ Rb)
    return np.stack(out, axis=1)


def location_channel(plan: RigPlan, bone: int, offset_world: np.ndarray, parent_delta: np.ndarray | None = None
                     ) -> np.ndarray:
    """The `location` channel values (F, 3) that move `bone`'s head by `offset_world` (F, 3), its
    parent turned by `parent_delta` (F, 3, 3 world deltas; None: at rest)."""
    rig = plan.rig
    delta_arm = offset_world @ np.linalg.inv(rig.world[:3, :3]).T
    if parent_delta is not None:
        A = rig.rotation
        rel = A.T @ parent_delta @ A                      # the parent's turn in armature axes
        delta_arm = np.einsum("fi,fij->fj", delta_arm, rel)  # = rel^T · delta, row vectors
    if rig.local_location[bone]:
        basis = polar_rotation(rig.matrices[bone, :3, :3])
    elif rig.parents[bone] >= 0:
        basis = polar_rotation(rig.matrices[rig.parents[bone], :3, :3])
    else:
        basis = np.eye(3)
    return delta_arm @ basis


def mover_location(plan: RigPlan, offset_world: np.ndarray) -> np.ndarray:
    """The mover bone's `location` channel values that displace its head by `offset_world`."""
    return location_channel(plan, plan.mover, offset_world)


def ik_locations(plan: RigPlan, Q: np.ndarray, heads: np.ndarray) -> dict[int, np.ndarray]:
    """Bone → `location` channel (F, 3) for every IK target and pole of the plan: each target's head
    where its chain's end is in the bake, each pole kept where it sits relative to its chain's top."""
    F, N = Q.shape[:2]
    moved = np.zeros((F, N, 3))                 # head displacement from the targets keyed so far
    tails = plan.rig.tails_world
    out: dict[int, np.ndarray] = {}
    for goal in plan.ik_goals:
        end = heads[:, goal.owner]
        if goal.use_tail:
            end = end + np.einsum("fij,j->fi", Q[:, goal.owner], tails[goal.owner] - plan.heads[goal.owner])
        wanted = [(goal.target, end)]
        if goal.pole >= 0 and goal.pole not in out:
            offset = plan.heads[goal.pole] - plan.heads[goal.root]
            wanted.append((goal.pole, heads[:, goal.root] + np.einsum("fij,j->fi", Q[:, goal.root], offset)))
        for bone, point in wanted:
            delta = point - heads[:, bone] - moved[:, bone]
            p = int(plan.rig.parents[bone])
            out[bone] = location_channel(plan, bone, delta, Q[:, p] if p >= 0 else None)
            moved[:, subtree(plan.rig.parents, bone)] += delta[:, None]
    return out

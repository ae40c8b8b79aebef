"""Generated Rigify rigs: bake onto the FK controls so that the deform bones follow the motion.

On a rig made by `pose.rigify_generate` the DEF-* bones follow ORG/MCH bones through
constraints: keys on them are overridden. An animator keys the controls instead, with the limbs
switched to FK. So, on such a rig:

1. The retarget is planned on the deform skeleton alone (the DEF-* bones, each parented to the
   nearest DEF bone above it, an ORG-x ancestor standing for DEF-x), and the bone map names DEF
   bones: their heads are the joints (that is what `momask_bone_map` stores and what a check of
   the bake measures).
2. Each mapped joint gets a control: the FK control of its deform bone, `<name>_fk<suffix>` of
   `DEF-<name><suffix>` (`thigh_fk.L`, `upper_arm_fk.L`, and the FK spine `spine_fk` ... `spine_fk.003`
   for pelvis and spine), else Rigify's `neck` / `head` (`hips` / `chest` when a spine has no FK
   chain), else the control named as the bone (`shoulder.L`). `torso` carries the root motion:
   it is turned and moved so that the pivot (the `hips` control's head, where the lower and upper
   spine turn) lands where the bake has it. `hips` and `chest` stay at rest: keying the FK spine
   lets each deform spine bone follow its own joint instead of Rigify's interpolation.
3. Every control's target orientation is its rest orientation turned by its deform bone's world
   delta from the retarget. Its keyable rotation is solved frame by frame against the *evaluated*
   pose of its parent (MCH bones with constraints, follow options such as `neck_follow`): a first
   guess from the control it rides on, refined by evaluating the rig until the rotations stop
   changing (one or two evaluations a frame).
4. Every limb's `IK_FK` switch (a custom property on the limb's parent control, 1.0 = FK) is set to
   FK on the rig and keyed at 1.0 in the new Action, so the baked range plays in FK. Both are part
   of the bake's undo step; the user's old Action keeps its own keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..rig.rest import BoneInfo
from ..rig.skeleton import JOINTS

DEF, ORG, MCH = "DEF-", "ORG-", "MCH-"
ROOT_CONTROL = "torso"
PIVOT_CONTROL = "hips"
SPINE_CONTROLS = {"pelvis": "hips", "spine3": "chest", "neck": "neck", "head": "head"}  # when no FK spine
IK_FK = "IK_FK"
FK = 1.0
MAX_ITERATIONS = 12
TOLERANCE = 1e-6  # 1 - |q·q'| between two refinements of a frame's rotations


@dataclass
class ControlPlan:
    """How a generated Rigify rig's controls stand for the mapped deform bones (read on the main thread)."""

    controls: dict[str, str]                 # joint name → control bone
    root_control: str                        # carries the root motion (torso)
    pivot: str                               # its head is where the spine turns (hips)
    switches: list[str] = field(default_factory=list)  # pose bones with an IK_FK property


def is_generated(obj) -> bool:
    """A rig that `pose.rigify_generate` made: its id/UI marks, a torso control and DEF bones."""
    bones = obj.data.bones
    marked = "rig_id" in obj.data.keys() or "rig_ui" in obj.keys()
    has_def = any(b.name.startswith(DEF) for b in bones)
    has_switch = any(IK_FK in pb.keys() for pb in obj.pose.bones)
    return (marked or has_switch) and ROOT_CONTROL in bones and has_def


def deform_parents(obj) -> dict[str, str | None]:
    """DEF bone → its nearest DEF ancestor (an ORG-x ancestor counts as DEF-x), parents first."""
    bones = obj.data.bones
    out: dict[str, str | None] = {}
    for b in bones:
        if not b.name.startswith(DEF):
            continue
        parent = None
        a = b.parent
        while a is not None:
            if a.name.startswith(DEF):
                parent = a.name
                break
            twin = DEF + a.name[len(ORG):] if a.name.startswith(ORG) else ""
            if twin and twin != b.name and twin in bones:
                parent = twin
                break
            a = a.parent
        out[b.name] = parent
    order: list[str] = []
    seen: set[str] = set()
    for n in out:
        chain, p = [], n
        while p is not None and p not in seen:
            if p in chain:  # a cycle through ORG twins: cut it here
                out[p] = None
                break
            chain.append(p)
            p = out[p]
        for c in reversed(chain):
            seen.add(c)
            order.append(c)
    return {n: out[n] for n in order}


def deform_infos(obj) -> list[BoneInfo]:
    """The deform skeleton as detection reads it (world-space rest geometry)."""
    from .rig_reader import read_rig

    return read_rig(obj, deform_parents(obj)).bone_infos()


def uses_deform_map(obj, bone_map: dict[str, str]) -> bool:
    """Bake through the controls when the map's pelvis is a deform bone of a generated rig."""
    pelvis = bone_map.get("pelvis", "")
    return pelvis.startswith(DEF) and is_generated(obj)


def _is_control(name: str) -> bool:
    return not name.startswith((DEF, ORG, MCH))


def control_for(obj, joint: str, deform: str) -> str | None:
    """The control that drives the deform bone of `joint`, or None."""
    bones = obj.data.bones
    base = deform[len(DEF):]
    m = re.match(r"^(.+?)((?:[._\-](?:L|R|l|r|left|right|Left|Right))?(?:\.\d+)?)$", base)
    candidates = [f"{m.group(1)}_fk{m.group(2)}"]  # a limb's or the spine's FK control
    if joint in SPINE_CONTROLS:
        candidates.append(SPINE_CONTROLS[joint])
    candidates.append(base)  # a control named as its bone (shoulder.L)
    for name in candidates:
        if name in bones and _is_control(name):
            return name
    org = obj.pose.bones.get(ORG + base)  # else: the control the ORG bone copies
    if org is not None:
        for c in org.constraints:
            sub = getattr(c, "subtarget", "")
            if c.type == "COPY_TRANSFORMS" and sub in bones and _is_control(sub) and "tweak" not in sub:
                return sub
    return None


def plan_controls(obj, bone_map: dict[str, str]) -> ControlPlan:
    controls = {}
    for j in JOINTS:
        if j in bone_map:
            c = control_for(obj, j, bone_map[j])
            if c is not None and c not in controls.values():
                controls[j] = c
    switches = [pb.name for pb in obj.pose.bones if IK_FK in pb.keys()]
    pivot = PIVOT_CONTROL if PIVOT_CONTROL in obj.data.bones else ROOT_CONTROL
    return ControlPlan(controls=controls, root_control=ROOT_CONTROL, pivot=pivot, switches=switches)


# ----------------------------------------------------------------------------- solving on the rig (bpy)


def _carrier(obj, name: str, controls: set[str]) -> str | None:
    """The control of `controls` that bone `name` rides on: up its parents, and through the first
    full Copy Transforms / Copy Rotation of an ORG/MCH bone on the way (Rigify's ORG bones copy their controls)."""
    bone = obj.data.bones[name].parent
    while bone is not None:
        if bone.name in controls:
            return bone.name
        pb = obj.pose.bones[bone.name]
        for c in pb.constraints:
            sub = getattr(c, "subtarget", "")
            if c.type in ("COPY_TRANSFORMS", "COPY_ROTATION") and c.influence == 1.0 and not c.mute \
                    and sub in controls:
                return sub
        bone = bone.parent
    return None


def solve_controls(obj, cplan: ControlPlan, plan, bake):
    """(control names, local quats (F, K, 4), root location (F, 3)) that make the DEF bones follow `bake`.

    Needs the rig without an action (or with one that doesn't key the controls) and the limbs in FK.
    """
    from ..rig.rotations import continuous_quats

    names = [cplan.controls[j] for j in cplan.controls]
    target_rot, root_rot, root_head, guess = _control_targets(obj, cplan, plan, bake)
    root_q, root_loc, quats = _solve_on_rig(obj, names, cplan.root_control, target_rot, root_rot, root_head, guess)
    out = np.stack([root_q] + [quats[n] for n in names], axis=1)
    return [cplan.root_control] + names, continuous_quats(out, axis=0), root_loc


def _control_targets(obj, cplan: ControlPlan, plan, bake):
    """Armature-space targets of every control over the bake, and a first guess of their local rotations.

    Returns (control rotations {name: (F, 3, 3)}, root rotation (F, 3, 3), root head (F, 3),
    guessed local quaternions {name: (F, 4)}).
    """
    from ..rig.rotations import continuous_quats, matrix_to_quat

    rig = plan.rig
    idx = rig.index
    A = np.array(obj.matrix_world)
    A_inv = np.linalg.inv(A)
    A_rot = A[:3, :3] / np.linalg.norm(A[:3, :3], axis=0)  # object rotation (uniform scale assumed)
    Q = np.einsum("ij,fnjk,kl->fnil", A_rot.T, bake.world_rotations, A_rot)  # armature-space deltas
    heads = bake.heads @ A_inv[:3, :3].T + A_inv[:3, 3]
    joints = list(cplan.controls)
    names = [cplan.controls[j] for j in joints]
    rest = {n: np.array(obj.data.bones[n].matrix_local) for n in names + [cplan.root_control]}
    delta = {j: Q[:, idx[plan.bone_map[j]]] for j in joints}

    # Targets in armature space: each control turned by its deform bone's delta.
    target_rot = {n: delta[j] @ rest[n][:3, :3] for j, n in zip(joints, names, strict=True)}
    # The torso carries the pivot (where the lower and the upper spine turn: the hips control's
    # head) rigidly: turn it with the spine bone at the pivot and put the pivot where the bake has it.
    root = cplan.root_control
    pivot_rest = np.array(obj.data.bones[cplan.pivot].head_local)
    mapped = [idx[b] for b in plan.bone_map.values()]
    carrier = min(mapped, key=lambda b: np.linalg.norm(rig.matrices[b, :3, 3] - pivot_rest))
    Qc = Q[:, carrier]
    pivot = heads[:, carrier] + np.einsum("fij,j->fi", Qc, pivot_rest - rig.matrices[carrier, :3, 3])
    root_rot = Qc @ rest[root][:3, :3]
    root_head = pivot + np.einsum("fij,j->fi", Qc, rest[root][:3, 3] - pivot_rest)

    # First guess: each control relative to the control it rides on (rigid parents).
    guess = {}
    rots = {**target_rot, root: root_rot}
    for n in names:
        c = _carrier(obj, n, set(rots))
        parent_delta = rots[c] @ rest[c][:3, :3].T if c else np.eye(3)
        local = np.swapaxes(parent_delta @ rest[n][:3, :3], -1, -2) @ target_rot[n]
        guess[n] = continuous_quats(matrix_to_quat(local), axis=0)
    return target_rot, root_rot, root_head, guess


def _solve_on_rig(obj, names, root, target_rot, root_rot, root_head, quats):
    """Frame by frame on the evaluated rig: the root by one exact conversion, then the controls
    iterated until each reaches its target (the rig's own constraints decide where children go).
    `quats` (the first guess) is refined in place. Returns (root quats, root locations, quats)."""
    import bpy
    from mathutils import Matrix, Quaternion

    F = len(root_rot)
    root_q, root_loc = np.zeros((F, 4)), np.zeros((F, 3))
    pbs = {n: obj.pose.bones[n] for n in names + [root]}
    modes = {n: pb.rotation_mode for n, pb in pbs.items()}
    for pb in pbs.values():  # solved as quaternions; keyed in each bone's own mode later
        pb.rotation_mode = "QUATERNION"
    view_layer = bpy.context.view_layer
    first = {}
    correction = {n: Quaternion() for n in names}
    try:
        for f in range(F):
            # The root: its parent doesn't move with the controls, one conversion is exact.
            m = np.eye(4)
            m[:3, :3], m[:3, 3] = root_rot[f], root_head[f]
            basis = obj.convert_space(pose_bone=pbs[root], matrix=Matrix(m.tolist()), from_space="POSE",
                                      to_space="LOCAL")
            root_q[f] = basis.to_quaternion()
            root_loc[f] = basis.to_translation()
            pbs[root].rotation_quaternion = Quaternion(root_q[f])
            pbs[root].location = root_loc[f]
            for n in names:  # warm start: this frame's guess with the last frame's correction
                first[n] = Quaternion(quats[n][f])
                pbs[n].rotation_quaternion = first[n] @ correction[n]
                quats[n][f] = pbs[n].rotation_quaternion
                pbs[n].location = (0.0, 0.0, 0.0)
            for _ in range(MAX_ITERATIONS):
                view_layer.update()
                change = 0.0
                for n in names:
                    pb = pbs[n]
                    m = np.array(pb.matrix)
                    m[:3, :3] = target_rot[n][f]
                    basis = obj.convert_space(pose_bone=pb, matrix=Matrix(m.tolist()), from_space="POSE",
                                              to_space="LOCAL")
                    q = np.array(basis.to_quaternion())
                    change = max(change, 1.0 - abs(float(q @ quats[n][f])))
                    quats[n][f] = q
                    pb.rotation_quaternion = Quaternion(q)
                if change < TOLERANCE:
                    break
            for n in names:
                correction[n] = first[n].inverted() @ Quaternion(quats[n][f])
    finally:
        for n, pb in pbs.items():
            pb.rotation_mode = modes[n]
    return root_q, root_loc, quats


def switch_to_fk(obj, cplan: ControlPlan) -> None:
    for name in cplan.switches:
        obj.pose.bones[name][IK_FK] = FK


def key_switches(obj, action, cplan: ControlPlan, frame_start: int) -> None:
    """Key every limb's IK_FK switch at FK in the new Action (one constant key)."""
    from .keyframes import bone_path, ensure_fcurve

    for name in cplan.switches:
        fc = ensure_fcurve(obj, action, bone_path(name, f'["{IK_FK}"]'), 0, name)
        fc.keyframe_points.add(1)
        fc.keyframe_points[0].co = (frame_start, FK)
        fc.keyframe_points[0].interpolation = "CONSTANT"
        fc.update()

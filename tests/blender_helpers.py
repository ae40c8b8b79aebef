"""Helpers for tests that run Blender as a module: rigs, registration, and bake_check's measure."""
from __future__ import annotations

import json
from pathlib import Path

import bpy  # noqa: F401  (Blender as a module; imported before momask_blender's bpy modules)
import numpy as np
import pytest

import momask_blender
from momask_blender.errors import MomaskError
from momask_blender.rig.skeleton import INDEX, JOINTS, to_blender
from momask_blender.scene.characters import import_rig, pick_armature

LIMBS = [("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"),
         ("right_knee", "right_ankle"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("pelvis", "neck")]


def ensure_registered() -> None:
    if not hasattr(bpy.types, "MOMASK_OT_generate"):
        momask_blender.register()


def load_rig(path) -> object:
    """Import a rig into a fresh scene, drop its meshes (not measured, slow to evaluate), select it.
    A .blend saved by Blender 5.0 (its new file header) cannot be opened by 4.2: skipped there."""
    try:
        import_rig(path)
    except MomaskError as err:
        if bpy.app.version < (5, 0, 0) and "not a blend file" in str(err):
            pytest.skip(f"{Path(path).name} was saved by a newer Blender than {bpy.app.version_string}, "
                        "which cannot open it")
        raise
    for o in [o for o in bpy.data.objects if o.type != "ARMATURE"]:
        bpy.data.objects.remove(o)
    bpy.context.view_layer.update()
    obj = pick_armature(None)
    activate(obj)
    ensure_registered()
    return obj


def metarig() -> object:
    """Blender's human metarig, made procedurally by rigify."""
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.object
    bpy.ops.object.mode_set(mode="OBJECT")
    ensure_registered()
    return obj


def activate(obj) -> None:
    for o in bpy.context.scene.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def baked_heads(obj, step: int = 1):
    """World heads per joint of the mapped bones over the action's frames: (frames, dict)."""
    bmap = json.loads(obj["momask_bone_map"])
    act = obj.animation_data.action
    lo, hi = (int(round(v)) for v in act.frame_range)
    frames = list(range(lo, hi + 1, step))
    out = {j: np.empty((len(frames), 3)) for j in bmap}
    scene = bpy.context.scene
    for k, f in enumerate(frames):
        scene.frame_set(f)
        mw = obj.matrix_world
        for j, b in bmap.items():
            out[j][k] = mw @ obj.pose.bones[b].head
    return np.array(frames) - lo, out


def _yaw(v, a):
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], -1)


def source_at(src_hml: np.ndarray, src_fps: float, frame_offsets, fps: float) -> np.ndarray:
    """Source joints (Blender axes) at the baked frames, linearly interpolated like bake_check."""
    src = to_blender(src_hml)
    s = np.asarray(frame_offsets) / fps * src_fps
    i0 = np.clip(np.floor(s).astype(int), 0, len(src) - 1)
    i1 = np.minimum(i0 + 1, len(src) - 1)
    w = (s - i0)[:, None, None]
    return src[i0] * (1 - w) + src[i1] * w


def measure(src_hml, src_fps, frame_offsets, heads, fps):
    """(errors in degrees per frame and limb, handedness agreement), as bake_check measures them."""
    J = source_at(src_hml, src_fps, frame_offsets, fps)
    keep = np.asarray(frame_offsets) / fps * src_fps <= len(src_hml) - 1
    limbs = [(p, c) for p, c in LIMBS if p in heads and c in heads]
    sd = np.stack([J[:, INDEX[c]] - J[:, INDEX[p]] for p, c in limbs], 1)[keep]
    bd = np.stack([heads[c] - heads[p] for p, c in limbs], 1)[keep]
    sd /= np.linalg.norm(sd, axis=-1, keepdims=True)
    bd /= np.linalg.norm(bd, axis=-1, keepdims=True)
    angles = np.linspace(-np.pi, np.pi, 721)
    best = max(angles, key=lambda t: (_yaw(sd[0], t) * bd[0]).sum())
    err = np.degrees(np.arccos(np.clip((_yaw(sd, best) * bd).sum(-1), -1, 1)))
    hand = None
    if all(j in heads for j in ("left_hip", "right_hip", "pelvis", "neck", "left_ankle", "left_foot")):
        def sign(P):
            return np.sign((np.cross(P["left_hip"] - P["right_hip"], P["neck"] - P["pelvis"])
                            * (P["left_foot"] - P["left_ankle"])).sum(-1))
        src = {j: J[keep][:, INDEX[j]] for j in JOINTS}
        rig = {j: v[keep] for j, v in heads.items()}
        hand = float(np.mean(sign(src) == sign(rig)))
    return err, hand


def build_armature(spec, name: str = "Rig", ik: bool = False, drivers: str = ""):
    """A real armature from a `tests.rig_factory.Spec` (in a fresh scene), and its true map.

    A centimetre spec (scale 100) is built as Blender's FBX importer leaves such rigs: bone data in
    centimetres, object scale 0.01; `spec.yaw` turns the object, not the bones. `ik` adds an IK
    constraint on each leg aiming at the spec's IK goal; `drivers="chain"` adds a parallel deform
    chain per leg ('<bone>_def') copying the leg bones' rotations, `drivers="controls"` makes every
    leg and arm bone copy its rotation from a control bone ('<bone>_ctrl') parented to the root."""
    import dataclasses
    import math

    from tests.rig_factory import build

    bpy.ops.wm.read_factory_settings(use_empty=True)
    cm = spec.scale == 100.0
    bones, truth = build(dataclasses.replace(spec, yaw=0.0))
    obj = armature_from_bones(bones, name)
    arm = obj.data
    bpy.ops.object.mode_set(mode="EDIT")
    if drivers == "chain":
        _deform_copies(arm, truth)
    elif drivers == "controls":
        _controls(arm, truth)
    bpy.ops.object.mode_set(mode="OBJECT")
    if cm:
        obj.scale = (0.01, 0.01, 0.01)
    obj.rotation_euler.z = math.radians(spec.yaw)
    if ik:
        _knee_iks(obj, bones, truth)
    for side in ("left", "right") if drivers else ():
        joints = ("hip", "knee", "ankle") if drivers == "chain" else ("hip", "knee", "ankle", "shoulder", "elbow")
        for j in joints:
            owner, source = (truth[f"{side}_{j}"] + "_def", truth[f"{side}_{j}"]) if drivers == "chain" else \
                (truth[f"{side}_{j}"], truth[f"{side}_{j}"] + "_ctrl")
            c = obj.pose.bones[owner].constraints.new("COPY_ROTATION")
            c.target, c.subtarget = obj, source
    bpy.context.view_layer.update()
    ensure_registered()
    return obj, truth


def armature_from_bones(bones, name: str = "Rig"):
    """An armature object in the current scene with these bones (BoneInfo: world heads and tails),
    active and selected, in object mode."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    activate(obj)
    bpy.ops.object.mode_set(mode="EDIT")
    for b in bones:
        eb = arm.edit_bones.new(b.name)
        eb.head, eb.tail = b.head, b.tail
    for b in bones:
        if b.parent:
            arm.edit_bones[b.name].parent = arm.edit_bones[b.parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _deform_copies(arm, truth) -> None:
    for side in ("left", "right"):
        parent = arm.edit_bones[truth[f"{side}_hip"]].parent
        for j in ("hip", "knee", "ankle"):
            src = arm.edit_bones[truth[f"{side}_{j}"]]
            eb = arm.edit_bones.new(src.name + "_def")
            eb.head, eb.tail, eb.parent = src.head, src.tail, parent
            parent = eb
            src.use_deform = False


def _controls(arm, truth) -> None:
    root = next(b for b in arm.edit_bones if b.parent is None)
    for side in ("left", "right"):
        for j in ("hip", "knee", "ankle", "shoulder", "elbow"):
            src = arm.edit_bones[truth[f"{side}_{j}"]]
            eb = arm.edit_bones.new(src.name + "_ctrl")
            eb.head, eb.tail, eb.roll, eb.parent = src.head, src.tail, src.roll, root


def _knee_iks(obj, bones, truth) -> None:
    """MMD-style leg IK (no pole): the chain from the hip to the bone that ends at the ankle
    reaches for the IK goal, a bone under the floor root at the ankle."""
    goals = [b.name for b in bones if b.helper]
    for side in ("left", "right"):
        ankle = obj.data.bones[truth[f"{side}_ankle"]].head_local
        goal = min(goals, key=lambda n: (obj.data.bones[n].head_local - ankle).length)
        owner = obj.pose.bones[truth[f"{side}_ankle"]].parent
        chain, b = 1, owner
        while b.name != truth[f"{side}_hip"]:
            b, chain = b.parent, chain + 1
        c = owner.constraints.new("IK")
        c.target, c.subtarget, c.chain_count = obj, goal, chain

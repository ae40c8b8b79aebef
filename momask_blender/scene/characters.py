"""Getting a character into the scene: importing a rig file with Blender's own importers, picking
its armature, or building Blender's human metarig for the demo."""
from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np

from ..errors import MomaskError
from ..rig.skeleton import JOINTS, NEXT, PARENTS, t_pose, to_blender

RIG_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend", ".bvh")


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")


def importer_cause(err: Exception) -> str:
    """One line saying why a Blender importer failed: the exception line of the traceback it reports
    (e.g. "IndexError: list index out of range"), or its own report, never the traceback's tail."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    causes = [line for line in lines if _EXCEPTION_LINE.match(line) and not line.startswith("Error: ")]
    cause = causes[-1] if causes else (lines[0] if lines else type(err).__name__)
    for prefix in ("Error: ", "Python: "):
        cause = cause.removeprefix(prefix)
    return cause[:200]


def import_rig(path: Path) -> None:
    """Load the character into a fresh, empty scene with Blender's own importers."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise MomaskError(f"rig file not found: {path}")
    if suffix not in RIG_SUFFIXES:
        raise MomaskError(f"unsupported rig file {path.name}: use one of {', '.join(RIG_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise MomaskError(f"rig file {path.name} is empty (0 bytes)")
    if suffix == ".bvh":
        from ..rig.bvh_check import check_bvh

        check_bvh(path)
    try:
        if suffix == ".blend":
            bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
            return
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if suffix in (".glb", ".gltf", ".vrm"):
            bpy.ops.import_scene.gltf(filepath=str(path))
        elif suffix == ".fbx":
            bpy.ops.import_scene.fbx(filepath=str(path))
        else:
            bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False)
    except RuntimeError as err:
        raise MomaskError(f"Blender could not import {path.name}: {importer_cause(err)}") from None


def pick_armature(name: str | None):
    """The armature called `name`, or the one with the most bones."""
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None or obj.type != "ARMATURE":
            raise MomaskError(f"no armature named '{name}' (armatures: {', '.join(o.name for o in arms) or 'none'})")
        return obj
    if not arms:
        raise MomaskError("the file has no armature")
    return max(arms, key=lambda o: len(o.data.bones))


def select_only(obj) -> None:
    """Make `obj` the only selected object and the active one, as a click in the viewport does."""
    view_layer = bpy.context.view_layer
    for o in view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj


def set_frame_rate(scene, fps: float) -> None:
    """Blender keeps a rate as a whole number and a divisor: 29.97 is 30 / 1.001. The rate is checked
    (1 to 1000 fps, model_core.inputs.timing) before the scene is touched."""
    from ..rig.resample import fps_settings

    scene.render.fps, scene.render.fps_base = fps_settings(fps)


def build_metarig():
    """Blender's human metarig (Rigify's, built by its operator) in a fresh empty scene; a plain
    armature of the HumanML3D skeleton when Rigify is not available."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        import addon_utils

        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        obj = bpy.context.object
        bpy.ops.object.mode_set(mode="OBJECT")
        return obj, "Rigify human metarig"
    except (ImportError, AttributeError, RuntimeError):
        return build_plain_rig(), "plain HumanML3D-skeleton armature (Rigify unavailable)"


def build_plain_rig():
    """An armature of the HumanML3D skeleton in a T-pose, its bones named as in BVH files."""
    pos = to_blender(t_pose())
    arm = bpy.data.armatures.new("Human")
    obj = bpy.data.objects.new("Human", arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    names = {0: "Hips", 3: "Spine", 6: "Spine1", 9: "Spine2", 12: "Neck", 15: "Head"}
    sides = {"left": "Left", "right": "Right"}
    parts = {"hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "foot": "ToeBase", "collar": "Shoulder",
             "shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand"}
    for j, joint in enumerate(JOINTS):
        if j not in names:
            side, _, part = joint.partition("_")
            names[j] = sides[side] + parts[part]
    bones = {}
    for j in range(22):
        b = arm.edit_bones.new(names[j])
        b.head = pos[j]
        tail = pos[NEXT[j]] if j in NEXT else pos[j] + (pos[j] - pos[PARENTS[j]]) * 0.5
        b.tail = tail if np.linalg.norm(tail - pos[j]) > 1e-3 else pos[j] + np.array([0.0, 0.0, 0.1])
        bones[j] = b
    for j in range(1, 22):
        bones[j].parent = bones[PARENTS[j]]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj

"""Bone maps kept on armatures: the map a bake uses, stored in the .blend with the object.

`Object["momask_bone_map"]` is the map (a JSON string, joint → bone: old files and tools read it
as that), `Object["momask_bone_map_info"]` how detection found each joint and how sure it was
(`Detection.info()`). A library override cannot save a property its library lacks, so its map is
also kept in the scenes that hold it. Which bones detection reads (a generated Rigify rig's
deform bones, else the bones themselves) is decided once here, for the bake and the editor.
"""
from __future__ import annotations

import json

from ..errors import MomaskError
from ..rig.bone_map import Detection, check_bone_map, map_from_json, map_to_json
from ..rig.rest import BoneInfo

BONE_MAP_PROPERTY = "momask_bone_map"
BONE_MAP_INFO_PROPERTY = "momask_bone_map_info"  # per joint: how it was found, how sure
OVERRIDE_MAPS = "momask_override_bone_maps"  # Scene property: bone maps of library-overridden armatures


def detection_bones(obj) -> list[BoneInfo]:
    """The bones detection reads: a generated Rigify rig's deform bones (see rigify_rig), any other
    rig's bones themselves."""
    from .rig_reader import bone_infos
    from .rigify_rig import deform_infos, is_generated

    return deform_infos(obj) if is_generated(obj) else bone_infos(obj)


def detection_for(obj) -> Detection:
    """What detection finds on an armature, remembered per rest pose (the sidebar asks on every redraw)."""
    from ..rig.bone_rows import detected

    return detected(detection_bones(obj))


def store_bone_map(obj, bone_map: dict[str, str], record: dict | None = None, *, keep_record: bool = False) -> None:
    """Keep the map on the armature object, and beside it `record`, detection's account of each
    joint (`Detection.info()`). Without a record the map is the user's (a preset, `--bone-map`):
    an earlier detection's record is dropped, unless `keep_record` (an edit of some joints, or the
    map a bake used: the editor matches the record joint by joint, bone by bone)."""
    import bpy

    text = map_to_json(bone_map)
    obj[BONE_MAP_PROPERTY] = text
    if record is not None:
        obj[BONE_MAP_INFO_PROPERTY] = json.dumps(record)
    elif not keep_record and BONE_MAP_INFO_PROPERTY in obj.keys():
        del obj[BONE_MAP_INFO_PROPERTY]
    if obj.override_library is not None:
        for scene in bpy.data.scenes:
            if scene.library is None and obj.name in scene.objects:
                maps = dict(scene.get(OVERRIDE_MAPS, {}))
                maps[obj.name] = text
                scene[OVERRIDE_MAPS] = maps


def store_detection(obj, detection: Detection) -> None:
    """The detected map and, beside it, how each joint was found and how sure."""
    store_bone_map(obj, detection.bone_map, detection.info())


def stored_bone_map(obj):
    """The map stored for the armature (its property, or for an override the scenes' copy), or None."""
    import bpy

    stored = obj.get(BONE_MAP_PROPERTY)
    if stored is None and obj.override_library is not None:
        stored = next((scene[OVERRIDE_MAPS][obj.name] for scene in bpy.data.scenes
                       if obj.name in scene.get(OVERRIDE_MAPS, {})), None)
    return stored


def resolve_bone_map(obj) -> dict[str, str]:
    """The map stored on the armature (the user's edits win), or a detected one. A detection that
    finds no humanoid refuses with what is missing rather than bake a guess."""
    stored = stored_bone_map(obj)
    if stored:
        data = map_from_json(stored) if isinstance(stored, str) else dict(stored)
        return check_bone_map(data, [b.name for b in obj.data.bones])
    found = detection_for(obj)
    if found.problem:
        raise MomaskError(f"armature '{obj.name}' does not look like a humanoid: {found.problem}; map its bones "
                          "by hand in the Bone Map panel or load a bone-map preset")
    return found.bone_map

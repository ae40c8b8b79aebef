"""MoMask in Blender: operators, preferences and the retargeting they use.

The pure modules (skeleton, rotations, bone_map, retarget, feet, resample, bvh_export) import
without Blender; `register()` pulls in the bpy modules.
"""
from __future__ import annotations

_registered: list = []


def _classes():
    from . import operators, preferences

    return preferences.classes + operators.classes


def register():
    import bpy

    for cls in _classes():
        bpy.utils.register_class(cls)
        _registered.append(cls)


def unregister():
    import bpy

    from . import model_cache

    while _registered:
        bpy.utils.unregister_class(_registered.pop())
    model_cache.unload()

"""MoMask in Blender: the sidebar, operators, preferences and the retargeting they use.

The pure modules (skeleton, rotations, bone_map, retarget, feet, resample, bvh_export, jobs,
variations' bookkeeping, bone_map_edit, model_status) import without Blender; `register()` pulls
in the bpy modules. Each bpy module lists its classes in a `classes` tuple; `register()`
registers them in order and adds the properties (`Scene.momask`, `WindowManager.momask_job`),
`unregister()` undoes all of it in reverse. Both are safe to call twice.
"""
from __future__ import annotations

_registered: list = []


def _classes():
    from . import inpaint_ops, inpaint_panel, operators, panels, preferences, properties

    return (properties.classes + preferences.classes + operators.classes + panels.classes + inpaint_ops.classes
            + inpaint_panel.classes)


def register():
    import bpy

    from . import inpaint_panel, preferences, properties

    if _registered:
        return  # already registered in this session
    try:
        for cls in _classes():
            bpy.utils.register_class(cls)
            _registered.append(cls)
        properties.register_properties()
        inpaint_panel.register_properties()
    except Exception:
        unregister()  # leave nothing half-registered
        raise
    preferences.add_user_site()


def unregister():
    import bpy

    from . import inpaint_panel, modal, model_cache, preferences, properties

    modal.request_cancel()
    modal.active.operator = modal.active.worker = None
    properties.unregister_properties()
    inpaint_panel.unregister_properties()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
    preferences.remove_user_site()
    model_cache.unload()

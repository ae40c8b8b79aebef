"""MoMask in Blender: the sidebar, operators, preferences and the retargeting they use.

The pure modules (skeleton, rotations, bone_map, retarget, feet, resample, bvh_export, jobs,
variations' bookkeeping, bone_map_edit, model_status) import without Blender; `register()` pulls
in the bpy modules. Each bpy module lists its classes in a `classes` tuple; `register()`
registers them in order and adds the properties (`Scene.momask`, `WindowManager.momask_job`),
`unregister()` undoes all of it in reverse. Both are safe to call twice.
"""
from __future__ import annotations


def _classes():
    from . import inpaint_ops, inpaint_panel, operators, panels, preferences, properties

    return (properties.classes + preferences.classes + operators.classes + panels.classes + inpaint_ops.classes
            + inpaint_panel.classes)


def register():
    """Register every class and property; a second call (or one after a module reload) adds nothing."""
    import bpy

    from . import inpaint_panel, modal, preferences, properties

    try:
        for cls in _classes():
            if not cls.is_registered:
                bpy.utils.register_class(cls)
        properties.register_properties()
        inpaint_panel.register_properties()
        modal.register_handlers()
    except Exception:
        unregister()  # leave nothing half-registered
        raise
    preferences.add_user_site()


def unregister():
    import bpy

    from . import inpaint_panel, modal, model_cache, preferences, properties

    modal.request_cancel()
    modal.active.operator = modal.active.worker = None
    modal.unregister_handlers()
    properties.unregister_properties()
    inpaint_panel.unregister_properties()
    for cls in reversed(_classes()):
        if cls.is_registered:
            bpy.utils.unregister_class(cls)
    preferences.remove_user_site()
    model_cache.unload()

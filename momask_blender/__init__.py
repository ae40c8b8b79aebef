"""MoMask in Blender: the sidebar, operators, preferences and the rig math they use.

The packages, from the bottom up (docs/ARCHITECTURE.md draws them): `rig` (pure NumPy) <
`scene` (the Blender edge) < `jobs` (long work, off the main thread) < `ui` (what the user
touches); `setup` (model files, PyTorch) beside them; the command lines `bake` and `demo` on top.
Importing this package needs nothing but Python: `register()` pulls in the bpy modules. Each ui
module lists its classes in a `classes` tuple; `register()` registers them in order and adds the
properties (`Scene.momask`, `Scene.momask_timeline`, `Scene.momask_direct`, `WindowManager.momask_job`), `unregister()`
undoes all of it in reverse. Both are safe to call twice.
"""
from __future__ import annotations


def _classes():
    from .ui import (
        bone_map_ops,
        direct_panel,
        operators,
        panels,
        preferences,
        properties,
        server_ops,
        timeline_ops,
        timeline_panel,
    )

    return (properties.classes + preferences.classes + server_ops.classes + operators.classes + bone_map_ops.classes
            + panels.classes + direct_panel.classes + timeline_ops.classes + timeline_panel.classes)


def thread_policy() -> str | None:
    """Put the model's thread wait policy in the environment before anything imports torch.

    The add-on imports torch lazily, in its worker, but OpenMP reads the policy once, when torch
    first loads (see model_core.threads): so it is set here, when the add-on is enabled. If another
    add-on or a startup script imported torch before, it is too late: a line in the console and a
    note beside the Threads preference say so and what to do. Returns model_core's verdict (None
    when the model core's wheel is missing: the preferences say that).
    """
    try:
        from model_core import threads
    except ImportError:
        return None
    verdict = threads.apply_at_import()
    if verdict == threads.TOO_LATE:
        print(f"MoMask: {threads.status()}")
    return verdict


def register():
    """Register every class and property; a second call (or one after a module reload) adds nothing."""
    thread_policy()
    import bpy

    from .jobs import modal
    from .scene import bone_colors
    from .ui import direct_panel, preferences, properties, timeline_panel

    try:
        for cls in _classes():
            if not cls.is_registered:
                bpy.utils.register_class(cls)
        properties.register_properties()
        timeline_panel.register_properties()
        direct_panel.register_properties()
        modal.register_handlers()
        bone_colors.register_handlers()
    except Exception:
        unregister()  # leave nothing half-registered
        raise
    preferences.add_user_site()


def unregister():
    import bpy

    from .jobs import modal, model_cache
    from .scene import bone_colors
    from .ui import direct_panel, preferences, properties, server_ops, timeline_panel

    server_ops.unregister_server()
    modal.request_cancel()
    bone_colors.unregister_handlers()
    modal.active.operator = modal.active.worker = None
    modal.unregister_handlers()
    properties.unregister_properties()
    timeline_panel.unregister_properties()
    direct_panel.unregister_properties()
    for cls in reversed(_classes()):
        if cls.is_registered:
            bpy.utils.unregister_class(cls)
    preferences.remove_user_site()
    model_cache.unload()

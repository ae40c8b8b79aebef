"""The bone-map editor's "Show Mapping" toggle: the mapped bones coloured in the viewport.

The toggle is a WindowManager property (never saved); `refresh` is called when it changes and
whenever the map changes while it is on (an edited row, Re-detect, a loaded preset). The colours
themselves, and giving the user's colours back, are `scene.bone_colors`.
"""
from __future__ import annotations

from ..scene import bone_colors
from .properties import editor_shown, target_armature


def refresh(context) -> None:
    """Colour the target armature's mapped bones if the toggle is on; else give every colour back."""
    from ..rig.bone_rows import mapping_colors

    wm = getattr(context, "window_manager", None)
    obj = target_armature(context)
    if not getattr(wm, "momask_show_mapping", False) or obj is None or obj.library is not None:
        bone_colors.hide_all()
        return
    shown = editor_shown(obj)
    for other in bone_colors.shown_objects():
        if other != obj:
            bone_colors.hide(other)
    bone_colors.show(obj, mapping_colors(shown.bone_map, shown.found))

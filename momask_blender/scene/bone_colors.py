"""Show a bone map in the viewport with Blender's bone colours, and give the user's colours back.

Colours go on the pose bones (per object, over the armature's own bone colours); before any is
changed, the user's palette, custom colours and the armature's "Bone Colors" display switch are
kept here, keyed by the object's session id, and `hide` writes them back exactly. Saving a file
while the map is shown saves the user's colours (`before_save` / `after_save`), and loading
another file forgets what was shown (`after_load`). Nothing of this is ever stored in a .blend.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy

_SHOWN: dict[int, _Kept] = {}


@dataclass
class _Kept:
    name: str
    bones: dict[str, tuple]              # pose bone → (palette, normal, select, active, colored constraints)
    show_bone_colors: bool | None        # the armature's display switch (None: this Blender has none)
    colors: dict[str, str]               # what is shown, to show it again after a save


def _read(color) -> tuple:
    c = color.custom
    return (color.palette, tuple(c.normal), tuple(c.select), tuple(c.active), c.show_colored_constraints)


def _write(color, kept: tuple) -> None:
    palette, normal, select, active, constraints = kept
    color.custom.normal, color.custom.select, color.custom.active = normal, select, active
    color.custom.show_colored_constraints = constraints
    color.palette = palette


def show(obj, colors: dict[str, str]) -> None:
    """Colour `obj`'s bones: bone name → palette ('THEME01'...); what was shown before is undone first."""
    hide(obj)
    kept = _Kept(obj.name, {}, getattr(obj.data, "show_bone_colors", None), dict(colors))
    for name, palette in colors.items():
        pb = obj.pose.bones.get(name)
        if pb is None:
            continue
        kept.bones[name] = _read(pb.color)
        pb.color.palette = palette
    if kept.show_bone_colors is False:
        obj.data.show_bone_colors = True
    _SHOWN[obj.session_uid] = kept


def hide(obj) -> None:
    """Give `obj` back the bone colours it had before `show`."""
    kept = _SHOWN.pop(obj.session_uid, None)
    if kept is None:
        return
    for name, saved in kept.bones.items():
        pb = obj.pose.bones.get(name)
        if pb is not None:
            _write(pb.color, saved)
    if kept.show_bone_colors is not None and obj.data.show_bone_colors != kept.show_bone_colors:
        obj.data.show_bone_colors = kept.show_bone_colors


def shown(obj) -> bool:
    return obj is not None and obj.session_uid in _SHOWN


def shown_objects() -> list:
    by_uid = {o.session_uid: o for o in bpy.data.objects if o.type == "ARMATURE"}
    return [by_uid[uid] for uid in list(_SHOWN) if uid in by_uid]


def hide_all() -> dict[str, dict[str, str]]:
    """Undo every shown map; returns what was shown (object name → colours) to show it again."""
    was = {}
    for obj in shown_objects():
        was[obj.name] = _SHOWN[obj.session_uid].colors
        hide(obj)
    _SHOWN.clear()
    return was


_before_save: dict[str, dict[str, str]] = {}


@bpy.app.handlers.persistent
def before_save(*_args) -> None:
    _before_save.clear()
    _before_save.update(hide_all())


@bpy.app.handlers.persistent
def after_save(*_args) -> None:
    for name, colors in _before_save.items():
        obj = bpy.data.objects.get(name)
        if obj is not None and obj.type == "ARMATURE":
            show(obj, colors)
    _before_save.clear()


@bpy.app.handlers.persistent
def after_load(*_args) -> None:
    """A loaded file starts with its own colours: forget what was shown in the one before."""
    _SHOWN.clear()


HANDLERS = (("save_pre", before_save), ("save_post", after_save), ("load_post", after_load))


def register_handlers() -> None:
    for event, fn in HANDLERS:
        handlers = getattr(bpy.app.handlers, event)
        if fn not in handlers:
            handlers.append(fn)


def unregister_handlers() -> None:
    hide_all()
    for event, fn in HANDLERS:
        handlers = getattr(bpy.app.handlers, event)
        while fn in handlers:
            handlers.remove(fn)

"""Write a bake into a new Action, in bulk (`keyframe_points.add` + `foreach_set`).

Blender 4.4+ keeps F-curves in a channelbag per action slot (5.0 has no `Action.fcurves`);
4.2/4.3 only have `action.fcurves`. `fcurve_collection` hides the difference.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..rig.rotations import from_quat

LINEAR = 1  # the enum value of 'LINEAR' in Keyframe.interpolation


def _slotted() -> bool:
    return bpy.app.version >= (4, 4, 0)


def new_action(obj, name: str):
    """A new Action assigned to `obj` (with its own slot on 4.4+); the old one is left untouched."""
    action = bpy.data.actions.new(name=name[:63] or "MoMask")
    if not _slotted():
        action.id_root = "OBJECT"
    anim = obj.animation_data or obj.animation_data_create()
    if _slotted():
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        anim.action = action
        anim.action_slot = slot
    else:
        anim.action = action
    return action


def fcurve_collection(obj, action):
    """The collection to create F-curves in (channelbag on 4.4+, the action itself before)."""
    if not _slotted():
        return action.fcurves
    from bpy_extras import anim_utils

    return anim_utils.action_ensure_channelbag_for_slot(action, obj.animation_data.action_slot).fcurves


def _write_curves(fcurves, data_path: str, group: str, frames: np.ndarray, values: np.ndarray) -> None:
    """One F-curve per column of values (F, C) at `frames`, linear keys."""
    n = len(frames)
    for i in range(values.shape[1]):
        fc = fcurves.new(data_path, index=i, group_name=group) if _slotted() else \
            fcurves.new(data_path, index=i, action_group=group)
        fc.keyframe_points.add(n)
        co = np.empty(2 * n, dtype=np.float32)
        co[0::2] = frames
        co[1::2] = values[:, i]
        fc.keyframe_points.foreach_set("co", co)
        fc.keyframe_points.foreach_set("interpolation", np.full(n, LINEAR, dtype=np.int32))
        fc.update()


ROTATION_PROPERTY = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}


def rotation_property(mode: str) -> str:
    """The pose-bone property that holds a rotation in this rotation mode."""
    return ROTATION_PROPERTY.get(mode, "rotation_euler")


def write_bake(obj, bake, action_name: str, frame_start: int, keep_root_from=None):
    """Create the Action for `bake` on `obj`, return it. Unmapped bones are put at rest.

    `keep_root_from`: an older Action whose root-bone location curves are copied instead of the
    bake's root path (root motion "keep").
    """
    frames = frame_start + np.arange(bake.frames, dtype=np.float64)
    for pb in obj.pose.bones:  # a clean pose: bones the bake doesn't key stay at rest
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.rotation_euler = (0.0, 0.0, 0.0)
        pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)
    old_curves = []
    if keep_root_from is not None and bake.root_bone:
        old_curves = _location_curves(obj, keep_root_from, bake.root_bone)
    action = new_action(obj, action_name)
    fcurves = fcurve_collection(obj, action)
    for k, name in enumerate(bake.bone_names):
        pb = obj.pose.bones[name]
        prop, values = rotation_property(pb.rotation_mode), from_quat(bake.quats[:, k], pb.rotation_mode)
        _write_curves(fcurves, bone_path(name, prop), name, frames, values)
    if bake.root_bone and bake.root_location is not None:
        path = bone_path(bake.root_bone, "location")
        if keep_root_from is not None:
            for index, points in old_curves:
                fc = fcurves.new(path, index=index, group_name=bake.root_bone) if _slotted() else \
                    fcurves.new(path, index=index, action_group=bake.root_bone)
                fc.keyframe_points.add(len(points) // 2)
                fc.keyframe_points.foreach_set("co", points)
                fc.update()
        else:
            _write_curves(fcurves, path, bake.root_bone, frames, bake.root_location)
    for name, values in getattr(bake, "locations", {}).items():  # IK targets and poles follow the chains
        if name != bake.root_bone and name in obj.pose.bones:
            _write_curves(fcurves, bone_path(name, "location"), name, frames, values)
    return action


def slot_fcurves(obj, action):
    """The F-curve collection `obj` reads from `action` (its slot's channelbag on 4.4+), or an
    empty tuple when the slot has none."""
    if not _slotted():
        return action.fcurves
    from bpy_extras import anim_utils

    slot = obj.animation_data.action_slot if obj.animation_data else None
    bag = anim_utils.action_get_channelbag_for_slot(action, slot) if slot else None
    return bag.fcurves if bag else ()


def _location_curves(obj, action, bone: str) -> list[tuple[int, np.ndarray]]:
    path = bone_path(bone, "location")
    out = []
    for fc in slot_fcurves(obj, action):
        if fc.data_path == path:
            co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out.append((fc.array_index, co))
    return out


def bone_path(bone: str, prop: str) -> str:
    """The data path of a pose bone's property (`location`, or a custom one as `["name"]`), the
    bone's name escaped as Blender escapes it."""
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"]' + (prop if prop.startswith("[") else f".{prop}")


# ----------------------------------------------------------------------------- editing a range in place

# Every stored property of a keyframe, with its width and NumPy type (enums read as ints).
_KEY_ATTRS = (("co", 2, np.float32), ("handle_left", 2, np.float32), ("handle_right", 2, np.float32),
              ("interpolation", 1, np.int32), ("handle_left_type", 1, np.int32),
              ("handle_right_type", 1, np.int32), ("easing", 1, np.int32), ("type", 1, np.int32),
              ("back", 1, np.float32), ("amplitude", 1, np.float32), ("period", 1, np.float32),
              ("select_control_point", 1, bool), ("select_left_handle", 1, bool),
              ("select_right_handle", 1, bool))


def read_keys(fcurve) -> dict[str, np.ndarray]:
    """Every keyframe property of `fcurve`, as (n, width) arrays."""
    n = len(fcurve.keyframe_points)
    out = {}
    for name, width, dtype in _KEY_ATTRS:
        buf = np.empty(n * width, dtype=dtype)
        fcurve.keyframe_points.foreach_get(name, buf)
        out[name] = buf.reshape(n, width)
    return out


def _write_keys(fcurve, keys: dict[str, np.ndarray]) -> None:
    for name, _width, _dtype in _KEY_ATTRS:
        fcurve.keyframe_points.foreach_set(name, keys[name].ravel())


def replace_range(fcurve, frames: np.ndarray, values: np.ndarray, lo: float, hi: float) -> None:
    """Replace the keys of `fcurve` on frames lo..hi by keys at `frames` with `values`.

    Every key outside the range keeps all its properties bit for bit, its handles included:
    Blender recalculates automatic handles of neighbouring keys when keys change, so the kept
    keys' handles are written back after the new keys' handles were computed. New keys take the
    interpolation of the key before them (linear if none) and automatic clamped handles.
    """
    old = read_keys(fcurve)
    at = old["co"][:, 0]
    keep = (at < lo - 0.5) | (at > hi + 0.5)
    n_new = len(frames)
    new = {name: np.zeros((n_new, width), dtype=dtype) for name, width, dtype in _KEY_ATTRS}
    new["co"][:, 0] = frames
    new["co"][:, 1] = values
    new["handle_left"][:] = new["co"]
    new["handle_right"][:] = new["co"]
    before = np.flatnonzero(keep & (at < lo))
    new["interpolation"][:] = old["interpolation"][before[-1]] if len(before) else LINEAR
    auto_clamped = _enum_value(fcurve, "handle_left_type", "AUTO_CLAMPED")
    new["handle_left_type"][:] = auto_clamped
    new["handle_right_type"][:] = auto_clamped
    merged = {name: np.concatenate([old[name][keep], new[name]]) for name, _w, _t in _KEY_ATTRS}
    order = np.argsort(merged["co"][:, 0], kind="stable")
    merged = {name: a[order] for name, a in merged.items()}
    points = fcurve.keyframe_points
    if hasattr(points, "clear"):
        points.clear()
    else:  # Blender before 4.0
        while len(points):
            points.remove(points[0], fast=True)
    points.add(len(order))
    _write_keys(fcurve, merged)
    fcurve.update()  # handles of the new keys (and, unasked, of their neighbours)
    kept = order < keep.sum()  # rows that came from the old keys
    now = read_keys(fcurve)
    for name in ("handle_left", "handle_right", "handle_left_type", "handle_right_type"):
        now[name][kept] = merged[name][kept]
        fcurve.keyframe_points.foreach_set(name, now[name].ravel())


_ENUM_CACHE: dict[tuple[str, str], int] = {}


def _enum_value(fcurve, prop: str, identifier: str) -> int:
    """The integer foreach_get/foreach_set use for an enum item of Keyframe.`prop`."""
    key = (prop, identifier)
    if key not in _ENUM_CACHE:
        items = bpy.types.Keyframe.bl_rna.properties[prop].enum_items
        _ENUM_CACHE[key] = items[identifier].value
    return _ENUM_CACHE[key]


def ensure_fcurve(obj, action, data_path: str, index: int, group: str):
    """The F-curve of the action's slot for data_path[index], created (empty) when missing."""
    fcurves = fcurve_collection(obj, action)
    fc = fcurves.find(data_path, index=index)
    if fc is None:
        fc = fcurves.new(data_path, index=index, group_name=group) if _slotted() else \
            fcurves.new(data_path, index=index, action_group=group)
    return fc

"""Reading an armature's animation: its current action's F-curves, their range and selected keys,
channel values, and the evaluated pose at any frame (NLA, drivers and constraints included)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import MomaskError
from .keyframes import slot_fcurves


def channelbag(obj):
    """(action, F-curve collection) of the armature's current action, or a MomaskError."""
    anim = obj.animation_data
    action = anim.action if anim else None
    if action is None:
        raise MomaskError(f"armature '{obj.name}' has no animation: bake or key one first (Generate)")
    fcurves = slot_fcurves(obj, action)
    if not len(fcurves) or not any(len(fc.keyframe_points) for fc in fcurves):
        raise MomaskError(f"the action '{action.name}' of '{obj.name}' has no keyframes: nothing to edit")
    return action, fcurves


def animation_range(fcurves) -> tuple[int, int]:
    """First and last keyed frames over every F-curve."""
    lo, hi = math.inf, -math.inf
    for fc in fcurves:
        if len(fc.keyframe_points):
            a, b = fc.range()
            lo, hi = min(lo, a), max(hi, b)
    return int(math.ceil(lo - 1e-6)), int(math.floor(hi + 1e-6))


def selected_key_frames(obj) -> np.ndarray:
    _, fcurves = channelbag(obj)
    frames = []
    for fc in fcurves:
        n = len(fc.keyframe_points)
        sel = np.empty(n, dtype=bool)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("select_control_point", sel)
        fc.keyframe_points.foreach_get("co", co)
        frames.append(co[0::2][sel])
    return np.concatenate(frames) if frames else np.zeros(0)


def sample_pose(context, obj, names, frames: np.ndarray) -> np.ndarray:
    """Posed armature-space matrices (F, N, 4, 4) of the bones `names` at (fractional) scene frames,
    from the evaluated object: NLA, drivers and constraints count."""
    scene = context.scene
    current, sub = scene.frame_current, scene.frame_subframe
    order = {pb.name: i for i, pb in enumerate(obj.pose.bones)}
    pick = np.array([order[n] for n in names])
    buf = np.empty(len(order) * 16, dtype=np.float32)
    out = np.empty((len(frames), len(names), 4, 4))
    try:
        for k, f in enumerate(frames):
            whole = int(math.floor(f + 1e-9))
            scene.frame_set(whole, subframe=float(max(0.0, f - whole)))
            ev = obj.evaluated_get(context.evaluated_depsgraph_get())
            ev.pose.bones.foreach_get("matrix", buf)
            out[k] = buf.reshape(-1, 4, 4).transpose(0, 2, 1)[pick]  # Blender flattens column by column
    finally:
        scene.frame_set(current, subframe=sub)
    return out


def read_channel(fcurves, data_path: str, width: int, default, frames) -> np.ndarray:
    """Values (len(frames), width) of a property's F-curves (their evaluation), `default` where a
    channel has none."""
    out = np.empty((len(frames), width))
    for i in range(width):
        fc = fcurves.find(data_path, index=i)
        if fc is None:
            out[:, i] = default[i]
        else:
            out[:, i] = [fc.evaluate(float(f)) for f in frames]
    return out

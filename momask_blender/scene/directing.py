"""Reading what directs a motion from the scene: a path curve's points, target empties, and the
armature's keyed frames and poses (the Blender edge; the math is in `rig.directing`).

Nothing here changes the scene: a bevelled curve is evaluated through a copy of its data that is
removed again before returning.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import bpy
import numpy as np

from ..errors import MomaskError
from ..rig.directing import REACH_JOINTS
from ..rig.skeleton import JOINTS
from .animation import channelbag, sample_pose

FRAME_PROPERTY = "momask_frame"   # on a target empty: the scene frame it is reached at
JOINT_PROPERTY = "momask_joint"   # on a target empty: "pelvis" (a waypoint) or a hand or foot
WAYPOINT = "pelvis"
_BONE_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]')


# ----------------------------------------------------------------------------- the path


def curve_points(context, obj) -> np.ndarray:
    """World points (P, 3) along a curve object, in order, as Blender evaluates it (Bézier, NURBS
    or poly, its resolution, its modifiers); a closed curve ends where it starts."""
    if obj is None:
        raise MomaskError("the path object is gone: pick a curve")
    if obj.type != "CURVE":
        kind = obj.type.lower().replace("_", " ")
        article = "an" if kind[0] in "aeiou" else "a"
        raise MomaskError(f"the path '{obj.name}' is {article} {kind}, not a curve: pick a Bézier, NURBS or poly curve")
    if not len(obj.data.splines):
        raise MomaskError(f"the path '{obj.name}' has no spline: draw one")
    data = obj.data
    shaped = data.bevel_depth > 0 or data.extrude > 0 or data.bevel_object is not None
    source = _bare_copy(context, obj) if shaped else obj  # a tube's surface is no path: take its centre line
    try:
        evaluated = source.evaluated_get(context.evaluated_depsgraph_get())
        mesh = evaluated.to_mesh()
        try:
            co = np.empty(3 * len(mesh.vertices))
            mesh.vertices.foreach_get("co", co)
            edges = np.empty(2 * len(mesh.edges), dtype=np.int64)
            mesh.edges.foreach_get("vertices", edges)
        finally:
            evaluated.to_mesh_clear()
    finally:
        if source is not obj:
            curve = source.data
            bpy.data.objects.remove(source)
            bpy.data.curves.remove(curve)
    order = _walk(edges.reshape(-1, 2), len(co) // 3, obj.name)
    world = np.asarray(obj.evaluated_get(context.evaluated_depsgraph_get()).matrix_world, np.float64)
    points = co.reshape(-1, 3)[order]
    return points @ world[:3, :3].T + world[:3, 3]


def _bare_copy(context, obj):
    """A temporary object with the curve's data minus bevel and extrusion, in the scene."""
    data = obj.data.copy()
    data.bevel_depth, data.extrude, data.bevel_object = 0.0, 0.0, None
    tmp = bpy.data.objects.new(f"{obj.name} (MoMask path)", data)
    tmp.matrix_world = obj.matrix_world
    context.scene.collection.objects.link(tmp)
    return tmp


def _walk(edges: np.ndarray, count: int, name: str) -> list[int]:
    """The vertices of a single chain of edges, end to end (a loop: around once and back)."""
    if count < 2 or not len(edges):
        raise MomaskError(f"the path '{name}' has no length: it needs at least two points")
    neighbours: dict[int, list[int]] = {i: [] for i in range(count)}
    for a, b in edges:
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    ends = [v for v, n in neighbours.items() if len(n) == 1]
    start = ends[0] if ends else 0
    order, previous = [start], -1
    while True:
        ahead = [v for v in neighbours[order[-1]] if v != previous]
        if not ahead or ahead[0] == start:
            if ahead:
                order.append(start)  # closed: end where it began
            break
        previous = order[-1]
        order.append(ahead[0])
    if len(set(order)) != count:
        raise MomaskError(f"the path '{name}' has several separate pieces: keep one spline in the path curve")
    return order


# ----------------------------------------------------------------------------- target empties


@dataclass(frozen=True)
class Empty:
    name: str
    location: np.ndarray   # (3,) world
    frame: float           # scene frame
    joint: str             # HumanML3D joint name


def target_empties(context, collection) -> list[Empty]:
    """The waypoints and reach targets in a collection: empties with a frame and a joint, where
    they are now (parents, constraints and drivers evaluated)."""
    if collection is None:
        return []
    depsgraph = context.evaluated_depsgraph_get()
    out = []
    for obj in sorted(collection.all_objects, key=lambda o: o.name):
        if obj.type != "EMPTY":
            continue
        frame, joint = obj.get(FRAME_PROPERTY), obj.get(JOINT_PROPERTY, WAYPOINT)
        if not isinstance(frame, int | float) or isinstance(frame, bool):
            raise MomaskError(f"the empty '{obj.name}' in '{collection.name}' has no frame: set its "
                              f"'{FRAME_PROPERTY}' property (the frame the body reaches it)")
        joint = REACH_JOINTS.get(str(joint), str(joint))
        if joint not in JOINTS:
            raise MomaskError(f"the empty '{obj.name}' names the joint {joint!r}: use pelvis (a waypoint) or "
                              f"one of {', '.join(REACH_JOINTS)}")
        location = np.asarray(obj.evaluated_get(depsgraph).matrix_world.translation, np.float64)
        out.append(Empty(obj.name, location, float(frame), joint))
    return out


# ----------------------------------------------------------------------------- keyed poses


def keyed_frames(obj, which: str, lo: float, hi: float, allowed: set[str]) -> list[float]:
    """The frames within lo..hi where the armature's action has keys (`which` ALL), or selected
    keys (SELECTED). A key there on a bone outside `allowed` is an error naming it."""
    if which == "NONE":
        return []
    _, fcurves = channelbag(obj)
    frames: set[float] = set()
    for fc in fcurves:
        bone = _bone_of(fc.data_path)
        chosen = _chosen(fc, which == "SELECTED", lo, hi)
        if bone is None or not len(chosen):
            continue
        if bone not in allowed:
            raise MomaskError(f"the key at frame {chosen[0]:g} on bone '{bone}' is on a bone the bone map does not "
                              "use: map the bone, or delete the key (or select only keys on mapped bones)")
        frames.update(round(float(f), 4) for f in chosen)
    return sorted(frames)


def _chosen(fcurve, selected_only: bool, lo: float, hi: float) -> np.ndarray:
    n = len(fcurve.keyframe_points)
    if not n:
        return np.zeros(0)
    co = np.empty(2 * n, dtype=np.float64)
    fcurve.keyframe_points.foreach_get("co", co)
    frames = co[0::2]
    if selected_only:
        selected = np.empty(n, dtype=bool)
        fcurve.keyframe_points.foreach_get("select_control_point", selected)
        frames = frames[selected]
    return frames[(frames >= lo - 1e-6) & (frames <= hi + 1e-6)]


def _bone_of(data_path: str) -> str | None:
    match = _BONE_PATH.match(data_path)
    return bpy.utils.unescape_identifier(match.group(1)) if match else None


def key_poses(context, obj, plan, frames) -> np.ndarray:
    """Rig-space joints (K, 22, 3) of the armature's evaluated pose at each scene frame."""
    from ..rig.windows import rig_joints

    if not len(frames):
        return np.zeros((0, 22, 3))
    return rig_joints(plan, sample_pose(context, obj, plan.rig.names, np.asarray(frames, np.float64)))

"""What directs a motion, gathered for a job: the panel's or the command line's choices (keyed
poses, a path curve, waypoint and reach empties, a constraints file) read from the scene on the
main thread and turned into the model's constraints.

Generate works in model space (the motion starts at the origin facing +Z) and places the result
where the rig stands (`rig.directing.Placement`); a range edit works in rig space, where its
window was read. Both count model frames at 20 fps from the scene frame `first`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..errors import MomaskError, model_checks
from ..rig import directing as rd
from ..rig.skeleton import FPS, INDEX, to_blender
from ..scene import directing as scene_directing

KEY_CHOICES = ("NONE", "ALL", "SELECTED")


@dataclass
class Direction:
    """The user's choices (plain data: the sidebar and the command line both fill one)."""
    use_keys: str = "NONE"            # NONE | ALL | SELECTED: keyed poses in the generated frames
    path: str = ""                    # a curve object the pelvis follows
    path_start: float | None = None   # scene frames; None: the first / last generated frame
    path_end: float | None = None
    face_path: bool = True            # the body faces along the path (else: as the model walks, turned)
    targets: str = ""                 # a collection of target empties (waypoints, reach targets)
    constraints_file: str = ""        # the model's JSON format, world positions in HumanML3D axes,
    #                                   frames at 20 fps from the first generated frame

    def wanted(self) -> bool:
        return self.use_keys != "NONE" or bool(self.path or self.targets or self.constraints_file)


def for_generate(context, obj, plan, direction: Direction, first: int, fps: float, frames: int | None):
    """(constraints in model space, the placement that puts model space on the rig, reaches, key
    frames) for a generation of `frames` model frames (None: the model picks) starting at scene
    frame `first`; reaches are (scene frame, joint index, world target) for `rig.reach`, key
    frames the scene frames of keyed poses."""
    placement = rd.placement_for(plan)
    if not direction.wanted():
        return [], placement, [], []
    last_scene = rd.scene_frame(frames - 1, first, fps) if frames else None
    span = f"scene frames {first}-{last_scene:g}" if frames else f"from scene frame {first}"
    targets = _targets(context, obj, plan, direction, first, fps, first,
                       last_scene if last_scene is not None else np.inf, frames)
    reaches = [(t.scene_frame, INDEX[t.joint], t.world) for t in targets if t.world is not None]
    keys = sorted({t.scene_frame for t in targets if t.source.startswith("the key pose")})
    targets = rd.to_model(targets, placement)
    return rd.constraints_from(targets, frames if frames else 10**9, span), placement, reaches, keys


def for_range(context, obj, plan, direction: Direction, window) -> list:
    """Constraints in rig space on the frames a range edit regenerates (decoded window frames)."""
    if not direction.wanted():
        return []
    first = window.first - window.offset * window.step  # the scene frame of decoded frame 0
    fps = FPS * window.step
    keys = window.keys
    lo, hi = float(keys.min()), float(keys.max())
    targets = _targets(context, obj, plan, direction, first, fps, lo, hi, None)
    span = f"the regenerated frames {rd.scene_frame(window.edit_start, first, fps):g}-" \
           f"{rd.scene_frame(window.edit_end - 1, first, fps):g}"
    return rd.constraints_from(targets, window.edit_end, span, first=window.edit_start)


def _targets(context, obj, plan, direction: Direction, first: float, fps: float, lo: float, hi: float,
             frames: int | None) -> list[rd.Target]:
    """Every target the user asked for, in rig space, model frames counted from scene frame `first`."""
    out: list[rd.Target] = []
    keyed: list[int] = []
    if direction.use_keys not in KEY_CHOICES:
        raise MomaskError(f"keyed poses: expected one of {', '.join(KEY_CHOICES)}, got {direction.use_keys!r}")
    if direction.use_keys != "NONE":
        scene_frames = rd.nearest_per_model_frame(
            scene_directing.keyed_frames(obj, direction.use_keys, lo, hi, _key_bones(plan)), first, fps)
        joints = scene_directing.key_poses(context, obj, plan, scene_frames)
        keyed = [rd.model_frame(f, first, fps) for f in scene_frames]
        out += [dataclasses.replace(t, scene_frame=float(s)) for t, s in
                zip(rd.key_targets(joints, keyed, scene_frames, plan.joint_bone.keys()),
                    np.repeat(scene_frames, len(plan.joint_bone)), strict=True)]
    waypoints = []
    if direction.targets:
        collection = bpy.data.collections.get(direction.targets)
        if collection is None:
            raise MomaskError(f"there is no collection '{direction.targets}' of target empties")
        for empty in scene_directing.target_empties(context, collection):
            point = rd.rig_space(empty.location, plan)
            frame = rd.model_frame(empty.frame, first, fps)
            if empty.joint == scene_directing.WAYPOINT:
                waypoints.append(rd.Target(frame, "pelvis", (float(point[0]), float(point[2])), "xz",
                                           f"the waypoint '{empty.name}' (frame {empty.frame:g})"))
            else:
                out.append(rd.Target(frame, empty.joint, tuple(float(v) for v in point), "xyz",
                                     f"the reach target '{empty.name}' (frame {empty.frame:g})",
                                     world=tuple(float(v) for v in empty.location), scene_frame=empty.frame))
    out += waypoints
    if direction.path:
        out += _path(context, plan, direction, first, fps, lo, hi, waypoints, keyed)
    if direction.constraints_file:
        out += _file_targets(direction.constraints_file, plan)
    return out


def _path(context, plan, direction: Direction, first, fps, lo, hi, waypoints, keyed) -> list[rd.Target]:
    points = scene_directing.curve_points(context, bpy.data.objects.get(direction.path)) \
        if direction.path in bpy.data.objects else None
    if points is None:
        raise MomaskError(f"there is no object '{direction.path}' to use as the path")
    start = direction.path_start if direction.path_start is not None else lo
    end = direction.path_end if direction.path_end is not None else hi
    if not np.isfinite(end):
        raise MomaskError("the path needs an end frame when the model picks the length: set the length or the "
                          "path's end frame")
    ground = rd.ground(rd.rig_space(points, plan))
    return rd.path_targets(ground, rd.model_frame(start, first, fps), rd.model_frame(end, first, fps),
                           direction.path, waypoints, skip=keyed, face=direction.face_path)


def _file_targets(path: str, plan) -> list[rd.Target]:
    """A constraints file's targets: world positions in HumanML3D axes, moved into rig space; a
    facing (an angle about +Y in the same axes) keeps its angle, as rig space turns nothing."""
    from model_core.control import Facing, read_constraints

    with model_checks():
        constraints = read_constraints(path)
    out = []
    for c in constraints:
        if isinstance(c, Facing):
            out.append(rd.Target(c.frame, rd.FACING, (c.angle,), "yaw", f"the {c.describe()} of {Path(path).name}"))
            continue
        target = np.nan_to_num(c.target())
        point = rd.rig_space(to_blender(target), plan)
        position = (point[0], point[2]) if c.axes == "xz" else tuple(point)
        out.append(rd.Target(c.frame, c.joint, tuple(float(v) for v in position), c.axes,
                             f"the constraint {c.describe()} of {Path(path).name}"))
    return out


def _key_bones(plan) -> set[str]:
    """Bones whose keys a keyed pose may hold: the mapped ones, the root mover and the pelvis's parents."""
    names = plan.rig.names
    allowed = {names[b] for b in plan.joint_bone.values()} | {names[plan.mover]}
    b = int(plan.rig.parents[plan.joint_bone[0]])
    while b >= 0:
        allowed.add(names[b])
        b = int(plan.rig.parents[b])
    return allowed

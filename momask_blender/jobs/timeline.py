"""Range edits as a job: regenerate a frame range of the armature's action, or extend it.

prepare (main thread: reads the evaluated pose and the action, changes nothing) → compute (pure:
the model, the inverse and forward retargets, the border blends) → apply (main thread: writes
keys only on the frames it owns). The timeline operators (`ui.timeline_ops`) and the command
line run these three steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..errors import MomaskError
from ..rig import windows
from ..rig.resample import interpolate
from ..scene.animation import animation_range, channelbag, read_channel, sample_pose
from ..scene.bone_maps import resolve_bone_map
from ..scene.keyframes import bone_path, ensure_fcurve, replace_range, rotation_property
from . import bake as bake_job


@dataclass
class Channel:
    """One property of one bone that gets new keys."""

    bone: str
    prop: str                   # rotation_quaternion | rotation_euler | rotation_axis_angle | location
    mode: str                   # the bone's rotation mode (or LOCATION)
    index: int                  # rotation: the bone's column in the forward retarget's output
    original: np.ndarray        # (K, C) the action's values on the new keys' frames (RANGE)
    anchor: np.ndarray          # (C,) the action's value on the anchor frame
    static: np.ndarray          # (C,) the property's value now (for channels without an F-curve)
    values: np.ndarray | None = None  # (K, C) the result


@dataclass
class TimelineJob:
    object_name: str
    action_name: str
    plan: object
    window: windows.Window
    joints: np.ndarray           # (samples, 22, 3) the sampled window, HumanML3D axes
    prompt: str
    generation: bake_job.Generation
    channels: list[Channel]
    fps: float
    keep_original: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    constraints: list = field(default_factory=list)  # model_core Constraints: rig space, decoded frames


def prepare_timeline(context, obj, window_for, *, prompt: str, generation: bake_job.Generation,
                     keep_original: bool = False, direction=None) -> TimelineJob:
    """Check the input and read the window's evaluated pose and the action. Changes nothing.

    `window_for(anim_start, anim_end, fps)` plans the window (a range, or an extension);
    `direction` (`jobs.directing.Direction`): keyed poses, a path and targets the new frames meet."""
    from ..rig.bone_map import missing_required
    from ..rig.plan import plan_rig
    from ..rig.resample import scene_fps
    from ..scene.rig_reader import check_armature, read_rig

    started = time.perf_counter()
    check_armature(obj)
    action, fcurves = channelbag(obj)
    if not prompt.strip():
        raise MomaskError("the prompt is empty: describe the new motion in a sentence")
    from ..scene.rigify_rig import is_generated

    if is_generated(obj):
        raise MomaskError(f"'{obj.name}' is a generated Rigify rig: its deform bones follow the controls, so a "
                          "range can't be rewritten in place yet; regenerate the whole motion with Generate")
    bone_map = resolve_bone_map(obj)
    if missing_required(bone_map):
        bone_map = {}
    plan = plan_rig(read_rig(obj), bone_map) if "pelvis" in bone_map else None
    windows.check_inverse_map(plan.joint_bone if plan else {})
    render = context.scene.render
    fps = scene_fps(render.fps, render.fps_base)
    lo, hi = animation_range(fcurves)
    window = window_for(lo, hi, fps)
    generation.check()
    generation.check_model()
    joints = windows.rig_joints(plan, sample_pose(context, obj, plan.rig.names, window.sample_frames()))

    frames = window.keys
    channels = []
    for bone in plan.key_bones:  # a bone a constraint drives is keyed through its driver, as in a bake
        pb = obj.pose.bones[plan.rig.names[bone]]
        mode = pb.rotation_mode
        prop = rotation_property(mode)
        channels.append(_channel(fcurves, pb, prop, mode, len(channels), frames, window.anchor))
    mover = plan.rig.names[plan.mover]
    channels.append(_channel(fcurves, obj.pose.bones[mover], "location", "LOCATION", -1, frames, window.anchor))
    job = TimelineJob(object_name=obj.name, action_name=action.name, plan=plan, window=window, joints=joints,
                      prompt=prompt.strip(), generation=generation, channels=channels, fps=fps,
                      keep_original=keep_original)
    if direction is not None and direction.wanted():
        from . import directing

        job.constraints = directing.for_range(context, obj, plan, direction, window)
    job.timings["prepare_s"] = time.perf_counter() - started
    return job


def _channel(fcurves, pb, prop: str, mode: str, index: int, frames, anchor: int) -> Channel:
    static = np.array(getattr(pb, prop), dtype=np.float64)
    width = len(static)
    path = bone_path(pb.name, prop)
    return Channel(bone=pb.name, prop=prop, mode=mode, index=index,
                   original=read_channel(fcurves, path, width, static, frames),
                   anchor=read_channel(fcurves, path, width, static, [anchor])[0], static=static)


def compute_timeline(job: TimelineJob, progress=None) -> TimelineJob:
    """The model, then the new keys' values for every channel. No bpy: safe in a worker thread."""
    from .model_cache import model_for

    started = time.perf_counter()
    gen = job.generation
    if progress is not None:
        progress("loading model", 0.0)
    model = model_for(gen, progress)
    loaded = time.perf_counter()
    if progress is not None:
        progress("regenerating", 0.1)
    decoded = windows.model_window(model, job.window, job.joints, job.prompt, seed=gen.seed,
                                   settings=gen.settings(), progress=progress, constraints=job.constraints)
    model_done = time.perf_counter()
    new = interpolate(decoded, job.window.blend_positions())
    quats, location = windows.pose_from_joints(job.plan, new)
    kind = job.window.kind
    blend = windows.blend_frames(len(job.window.keys), job.fps)
    for ch in job.channels:
        if ch.mode == "LOCATION":
            ch.values = windows.blend_location(ch.original, location, kind, blend, ch.anchor)
        else:
            ch.values = windows.blend_rotation(ch.mode, ch.original, quats[:, ch.index], kind, blend, ch.anchor)
    job.timings.update(load_model_s=loaded - started, model_s=model_done - loaded,
                       retarget_s=time.perf_counter() - model_done)
    return job


def apply_timeline(context, job: TimelineJob) -> dict:

    started = time.perf_counter()
    obj = bpy.data.objects.get(job.object_name)
    if obj is None:
        raise MomaskError(f"armature '{job.object_name}' is gone")
    action, _ = channelbag(obj)
    if action.name != job.action_name:
        raise MomaskError(f"the armature's action changed to '{action.name}' while the model ran: run it again")
    copy = None
    if job.keep_original:
        copy = action.copy()
        copy.name = f"{action.name} (before MoMask)"
        copy.use_fake_user = True
    keys = job.window.keys.astype(np.float64)
    lo, hi = float(keys.min()), float(keys.max())
    for ch in job.channels:
        for i in range(ch.values.shape[1]):
            fc = ensure_fcurve(obj, action, bone_path(ch.bone, ch.prop), i, ch.bone)
            frames, values = keys, ch.values[:, i]
            if not len(fc.keyframe_points):  # a new curve: hold the old value outside the new keys
                if job.window.kind == "RANGE":
                    frames = np.concatenate([[lo - 1], keys, [hi + 1]])
                    values = np.concatenate([[ch.static[i]], values, [ch.static[i]]])
                else:
                    frames = np.append(keys, job.window.anchor)
                    values = np.append(values, ch.static[i])
                    order = np.argsort(frames)
                    frames, values = frames[order], values[order]
            replace_range(fc, frames, values, lo, hi)
    scene = context.scene
    if job.window.kind == "AFTER" and scene.frame_end < hi:
        scene.frame_end = int(hi)
    if job.window.kind == "BEFORE" and scene.frame_start > lo:
        scene.frame_start = max(0, int(lo))  # the scene starts at 0 at the earliest; keys may lie before it
    job.timings["keyframes_s"] = time.perf_counter() - started
    covered = job.window.covered()
    return {"armature": obj.name, "action": action.name, "kind": job.window.kind, "frames": [int(lo), int(hi)],
            "tokens_cover": list(covered), "window": [float(job.window.first),
                                                      float(job.window.sample_frames()[-1])],
            "curves": sum(ch.values.shape[1] for ch in job.channels), "original_copy": copy.name if copy else None,
            "constraints": len(job.constraints),
            "seconds": {k: round(v, 4) for k, v in job.timings.items()}}


def run(context, obj, window_for, **prepare_args) -> dict:
    """prepare → compute → apply in a row on this thread, for the command lines and scripts (the
    timeline operators run the same three steps, compute in a worker thread)."""
    return apply_timeline(context, compute_timeline(prepare_timeline(context, obj, window_for, **prepare_args)))

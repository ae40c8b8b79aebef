"""Timeline operators: regenerate a frame range of the armature's action, extend it, and bake
motions longer than one model call or made of a prompt sequence.

Each is prepare (main thread: reads the evaluated pose and the action, changes nothing) →
compute (pure: the model, the inverse and forward retargets, the border blends) → apply (main
thread: writes keys only on the frames it owns). With the modal runner (`modal.py`) present,
`invoke` runs compute in a worker thread with progress and Esc; `execute` is synchronous.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import bpy
import numpy as np

from model_core.settings import EDIT_RESIDUAL_GUIDANCE, FPS

from . import inpaint, preferences
from . import job as bake_job
from .errors import MomaskError
from .modal import ModalJobOperator as _JobBase
from .properties import DEFAULTS
from .resample import interpolate

SIDE_ITEMS = [("AFTER", "After", "New frames after the end of the animation"),
              ("BEFORE", "Before", "New frames before the start of the animation")]

# The last finished job and the last error, for scripts and the command line.
last_result: dict = {}
last_error = ""


# ----------------------------------------------------------------------------- reading the rig


def channelbag(obj):
    """(action, F-curve collection) of the armature's current action, or a MomaskError."""
    from .keyframes import slot_fcurves

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


def _path(bone: str, prop: str) -> str:
    from .keyframes import _escape

    return f'pose.bones["{_escape(bone)}"].{prop}'


def _read_channel(fcurves, data_path: str, width: int, default, frames) -> np.ndarray:
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


# ----------------------------------------------------------------------------- the job


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
    window: inpaint.Window
    joints: np.ndarray           # (samples, 22, 3) the sampled window, HumanML3D axes
    prompt: str
    generation: bake_job.Generation
    channels: list[Channel]
    fps: float
    keep_original: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def prepare_timeline(context, obj, window_for, *, prompt: str, generation: bake_job.Generation,
                     keep_original: bool = False) -> TimelineJob:
    """Check the input and read the window's evaluated pose and the action. Changes nothing.

    `window_for(anim_start, anim_end, fps)` plans the window (a range, or an extension)."""
    from .bone_map import missing_required
    from .model_cache import check_paths
    from .resample import scene_fps
    from .retarget import plan_rig
    from .rig_reader import check_armature, read_rig

    started = time.perf_counter()
    check_armature(obj)
    action, fcurves = channelbag(obj)
    if not prompt.strip():
        raise MomaskError("the prompt is empty: describe the new motion in a sentence")
    from .rigify_rig import is_generated

    if is_generated(obj):
        raise MomaskError(f"'{obj.name}' is a generated Rigify rig: its deform bones follow the controls, so a "
                          "range can't be rewritten in place yet; regenerate the whole motion with Generate")
    bone_map = bake_job.resolve_bone_map(obj)
    if missing_required(bone_map):
        bone_map = {}
    plan = plan_rig(read_rig(obj), bone_map) if "pelvis" in bone_map else None
    inpaint.check_inverse_map(plan.joint_bone if plan else {})
    render = context.scene.render
    fps = scene_fps(render.fps, render.fps_base)
    lo, hi = animation_range(fcurves)
    window = window_for(lo, hi, fps)
    check_paths(generation.checkpoints, generation.clip)
    joints = inpaint.rig_joints(plan, sample_pose(context, obj, plan.rig.names, window.sample_frames()))

    frames = window.keys
    channels = []
    for seg in plan.segments:
        name = plan.rig.names[seg.bone]
        pb = obj.pose.bones[name]
        mode = pb.rotation_mode
        prop = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")
        channels.append(_channel(fcurves, pb, prop, mode, len(channels), frames, window.anchor))
    mover = plan.rig.names[plan.mover]
    channels.append(_channel(fcurves, obj.pose.bones[mover], "location", "LOCATION", -1, frames, window.anchor))
    job = TimelineJob(object_name=obj.name, action_name=action.name, plan=plan, window=window, joints=joints,
                      prompt=prompt.strip(), generation=generation, channels=channels, fps=fps,
                      keep_original=keep_original)
    job.timings["prepare_s"] = time.perf_counter() - started
    return job


def _channel(fcurves, pb, prop: str, mode: str, index: int, frames, anchor: int) -> Channel:
    static = np.array(getattr(pb, prop), dtype=np.float64)
    width = len(static)
    path = _path(pb.name, prop)
    return Channel(bone=pb.name, prop=prop, mode=mode, index=index,
                   original=_read_channel(fcurves, path, width, static, frames),
                   anchor=_read_channel(fcurves, path, width, static, [anchor])[0], static=static)


def compute_timeline(job: TimelineJob, progress=None) -> TimelineJob:
    """The model, then the new keys' values for every channel. No bpy: safe in a worker thread."""
    from .model_cache import get_model

    started = time.perf_counter()
    gen = job.generation
    if progress is not None:
        progress("loading model", 0.0)
    model = get_model(gen.checkpoints, gen.clip, gen.device)
    loaded = time.perf_counter()
    if progress is not None:
        progress("regenerating", 0.1)
    decoded = inpaint.model_window(model, job.window, job.joints, job.prompt, seed=gen.seed,
                                   settings=gen.settings(), progress=progress)
    model_done = time.perf_counter()
    new = interpolate(decoded, job.window.blend_positions())
    quats, location = inpaint.pose_from_joints(job.plan, new)
    kind = job.window.kind
    blend = inpaint.blend_frames(len(job.window.keys), job.fps)
    for ch in job.channels:
        if ch.mode == "LOCATION":
            ch.values = inpaint.blend_location(ch.original, location, kind, blend, ch.anchor)
        else:
            ch.values = inpaint.blend_rotation(ch.mode, ch.original, quats[:, ch.index], kind, blend, ch.anchor)
    job.timings.update(load_model_s=loaded - started, model_s=model_done - loaded,
                       retarget_s=time.perf_counter() - model_done)
    return job


def apply_timeline(context, job: TimelineJob) -> dict:
    """Write the new keys into the armature's current action; keys on other frames stay as they were."""
    from .keyframes import ensure_fcurve, replace_range

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
            fc = ensure_fcurve(obj, action, _path(ch.bone, ch.prop), i, ch.bone)
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
            "seconds": {k: round(v, 4) for k, v in job.timings.items()}}


# ----------------------------------------------------------------------------- operators


class _Generation:
    """The advanced settings shared with Generate (and how to read them with the preferences)."""

    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does, in a sentence")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    steps: bpy.props.IntProperty(name="Steps", default=DEFAULTS["steps"], min=1, max=100)
    guidance: bpy.props.FloatProperty(name="Guidance", default=DEFAULTS["guidance"], min=0.0, max=20.0)
    residual_guidance: bpy.props.FloatProperty(name="Residual guidance", default=DEFAULTS["residual_guidance"],
                                               min=0.0, max=20.0)
    temperature: bpy.props.FloatProperty(name="Temperature", default=DEFAULTS["temperature"], min=0.01, max=5.0)
    topk: bpy.props.FloatProperty(name="Top-k", default=DEFAULTS["topk"], min=0.0, max=0.99)
    device: bpy.props.StringProperty(name="Device", default="", description="cpu, cuda or auto; empty: preferences")
    checkpoints: bpy.props.StringProperty(name="Checkpoints", subtype="DIR_PATH",
                                          description="Overrides the preferences' checkpoint folder")
    clip: bpy.props.StringProperty(name="CLIP file", subtype="FILE_PATH",
                                   description="Overrides the preferences' CLIP file")

    def generation(self, context, prompt: str | None = None, seconds: float | None = None) -> bake_job.Generation:
        prefs = preferences.get(context)
        return bake_job.Generation(
            prompt=(self.prompt if prompt is None else prompt).strip(), seconds=seconds, seed=self.seed,
            variations=1, steps=self.steps, guidance=self.guidance, residual_guidance=self.residual_guidance,
            temperature=self.temperature, topk=self.topk,
            checkpoints=bpy.path.abspath(self.checkpoints or (prefs.checkpoints if prefs else "")),
            clip=bpy.path.abspath(self.clip or (prefs.clip if prefs else "")),
            device=self.device or preferences.model_device(prefs))

    def job_finished(self, context, state) -> None:
        global last_error
        last_error = "" if getattr(state, "state", "") == "done" else getattr(state, "message", "")


def _active_armature(context):
    return context.active_object if context.active_object is not None else context.view_layer.objects.active


class _EditInPlace(_Generation, _JobBase):
    """What regenerating a range and extending share: the window runs through the model, the
    action is edited in place; `plan` picks the window, `done_message` reports the frames."""

    keep_original: bpy.props.BoolProperty(name="Keep a copy of the original",
                                          description="Save the action as it was under a new name first")
    # editing regenerates the residual layers with the official editing script's guidance
    residual_guidance: bpy.props.FloatProperty(name="Residual guidance", default=EDIT_RESIDUAL_GUIDANCE,
                                               min=0.0, max=20.0)
    done_message = "{lo}-{hi} of '{action}'"

    def plan(self):
        raise NotImplementedError

    def job_prepare(self, context):
        return prepare_timeline(context, _active_armature(context), self.plan(), prompt=self.prompt,
                                generation=self.generation(context), keep_original=self.keep_original)

    def job_compute(self, data, progress):
        return compute_timeline(data, progress)

    def job_apply(self, context, result) -> str:
        global last_result
        last_result = apply_timeline(context, result)
        lo, hi = last_result["frames"]
        return self.done_message.format(lo=lo, hi=hi, action=last_result["action"])


class MOMASK_OT_inpaint(_EditInPlace, bpy.types.Operator):
    """Regenerate a frame range of the active armature's animation from a prompt, in place"""

    bl_idname = "momask.inpaint"
    bl_label = "Regenerate Range"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Regenerating range"
    done_message = "Regenerated frames {lo}-{hi} of '{action}'"

    frame_start: bpy.props.IntProperty(name="Start", description="First frame to regenerate")
    frame_end: bpy.props.IntProperty(name="End", description="Last frame to regenerate")

    def plan(self):
        s, e = self.frame_start, self.frame_end
        return lambda lo, hi, fps: inpaint.plan_range(lo, hi, s, e, fps)


class MOMASK_OT_extend(_EditInPlace, bpy.types.Operator):
    """Generate new seconds before the start or after the end of the active armature's animation"""

    bl_idname = "momask.extend"
    bl_label = "Extend Animation"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Extending"
    done_message = "Added frames {lo}-{hi} to '{action}'"

    seconds: bpy.props.FloatProperty(name="Seconds", default=2.0, min=0.0, max=60.0,
                                     description=f"New motion to add (at most {inpaint.MAX_EXTEND_SECONDS:g} s)")
    side: bpy.props.EnumProperty(name="Side", items=SIDE_ITEMS, default="AFTER")

    def plan(self):
        seconds, side = self.seconds, self.side
        return lambda lo, hi, fps: inpaint.plan_extension(lo, hi, seconds, side, fps)


class MOMASK_OT_generate_sequence(_Generation, _JobBase, bpy.types.Operator):
    """Generate one continuous motion of any length (up to 10 minutes) from a prompt sequence"""

    bl_idname = "momask.generate_sequence"
    bl_label = "Generate Sequence"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Generating sequence"

    sequence: bpy.props.StringProperty(
        name="Sequence", description="Lines of 'seconds<TAB>prompt'; empty: the prompt for the given seconds, "
        "or the scene's prompt-sequence rows")
    seconds: bpy.props.FloatProperty(name="Seconds", default=0.0, min=0.0,
                                     description="Length for the single prompt (up to 600 s)")
    use_scene_rows: bpy.props.BoolProperty(name="Use the panel's rows", default=False)
    root_motion: bpy.props.EnumProperty(name="Root motion", items=[
        ("full", "Full", ""), ("in-place", "In place", ""), ("keep", "Keep existing path", "")], default="full")
    foot_lock: bpy.props.BoolProperty(name="Lock feet", default=True)

    def _segments(self, context):
        import model_core
        from model_core.generation.timeline import MAX_LONG_SECONDS, parse_sequence

        try:
            if self.use_scene_rows:
                rows = context.scene.momask_timeline.rows
                text = "\n".join(f"{r.seconds}\t{r.prompt}" for r in rows)
                if not rows:
                    raise MomaskError("the prompt sequence has no rows: add a row with a prompt and its seconds")
            elif self.sequence.strip():
                text = self.sequence
            else:
                if not self.seconds > 0 or self.seconds > MAX_LONG_SECONDS:
                    raise MomaskError(f"the length must be more than 0 and at most {MAX_LONG_SECONDS:g} s, "
                                      f"got {self.seconds:g} s")
                if not self.prompt.strip():
                    raise MomaskError("the prompt is empty: describe the motion in a sentence")
                text = f"{self.seconds}\t{self.prompt.strip()}"
            segments = parse_sequence(text)
        except model_core.ModelError as err:
            raise MomaskError(str(err)) from None
        total = sum(s.frames for s in segments) / FPS
        if total > MAX_LONG_SECONDS:
            raise MomaskError(f"the sequence lasts {total:g} s, more than the {MAX_LONG_SECONDS:g} s maximum")
        return segments

    def job_prepare(self, context):
        segments = self._segments(context)
        title = " / ".join(dict.fromkeys(s.prompt for s in segments))
        seconds = sum(s.frames for s in segments) / FPS
        job = bake_job.prepare(context, _active_armature(context), prompt=title,
                               generation=self.generation(context, title, seconds),
                               source_path="", root_motion=self.root_motion, foot_lock=self.foot_lock)
        return job, segments

    def job_compute(self, data, progress):
        import model_core
        from model_core.generation.timeline import generate_sequence

        from .model_cache import get_model

        job, segments = data
        started = time.perf_counter()
        model = get_model(job.generation.checkpoints, job.generation.clip, job.generation.device)
        loaded = time.perf_counter()
        try:
            motion = generate_sequence(model, segments, seed=job.generation.seed,
                                       settings=job.generation.settings(), progress=progress)
        except model_core.ModelError as err:
            raise MomaskError(str(err)) from None
        joints = np.asarray(motion.joints[0, : motion.lengths[0]], np.float64)
        if not np.isfinite(joints).all():
            raise MomaskError("the model produced NaN/inf joint positions (broken checkpoints?)")
        job.source, job.source_fps, job.seams = joints, float(FPS), list(motion.seams)
        bake_job.compute(job)
        job.timings.update(load_model_s=loaded - started, generate_s=time.perf_counter() - loaded)
        return job

    def job_apply(self, context, job) -> str:
        global last_result
        actions = bake_job.apply(context, job)
        last_result = {**bake_job.summary(job, actions), "job": job}
        return f"'{actions[0].name}': {job.bakes[0].frames} frames on {job.object_name}"


class MOMASK_OT_inpaint_range(bpy.types.Operator):
    """Set the range to regenerate from the scene's preview range or the selected keyframes"""

    bl_idname = "momask.inpaint_range"
    bl_label = "Range From"
    bl_options = {"REGISTER", "UNDO"}

    source: bpy.props.EnumProperty(name="From", items=[
        ("PREVIEW", "Preview Range", "The scene's preview range"),
        ("KEYS", "Selected Keys", "The frames of the selected keyframes of the active armature")])

    def execute(self, context):
        scene = context.scene
        try:
            if self.source == "PREVIEW":
                lo, hi = inpaint.range_from_preview(scene.use_preview_range, scene.frame_preview_start,
                                                    scene.frame_preview_end)
            else:
                obj = _active_armature(context)
                if obj is None or obj.type != "ARMATURE":
                    raise MomaskError("select the armature whose keys set the range")
                lo, hi = inpaint.range_from_keys(selected_key_frames(obj))
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        props = scene.momask_timeline
        props.frame_start, props.frame_end = lo, hi
        return {"FINISHED"}


classes = (MOMASK_OT_inpaint, MOMASK_OT_extend, MOMASK_OT_generate_sequence, MOMASK_OT_inpaint_range)

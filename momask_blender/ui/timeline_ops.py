"""Timeline operators: regenerate a frame range of the armature's action, extend it, and bake
motions longer than one model call or made of a prompt sequence.

Each runs a job (`jobs.timeline` for range edits, `jobs.bake` for sequences) through the modal
runner: `invoke` computes in a worker thread with progress and Esc; `execute` is synchronous.
"""
from __future__ import annotations

import bpy

from model_core.settings import EDIT_RESIDUAL_GUIDANCE, FPS, MAX_LONG_SECONDS

from ..errors import MomaskError
from ..jobs import bake as bake_job
from ..jobs.modal import ModalJobOperator as _JobBase
from ..jobs.timeline import apply_timeline, compute_timeline, prepare_timeline
from ..rig import windows
from ..scene.animation import selected_key_frames
from . import preferences, server_ops
from .direct_panel import DirectedOperator
from .properties import DEFAULTS, MAX_STEPS, ROOT_MOTION_ITEMS, active_object

SIDE_ITEMS = [("AFTER", "After", "New frames after the end of the animation"),
              ("BEFORE", "Before", "New frames before the start of the animation")]

# The last finished job and the last error, for scripts.
last_result: dict = {}
last_error = ""


class _Generation:
    """The advanced settings shared with Generate (and how to read them with the preferences)."""

    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does, in a sentence")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    steps: bpy.props.IntProperty(name="Steps", default=DEFAULTS["steps"], min=1, max=MAX_STEPS)
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
        files = dict(checkpoints=bpy.path.abspath(self.checkpoints or (prefs.checkpoints if prefs else "")),
                     clip=bpy.path.abspath(self.clip or (prefs.clip if prefs else "")),
                     device=self.device or preferences.model_device(prefs))
        return bake_job.Generation(
            prompt=(self.prompt if prompt is None else prompt).strip(), seconds=seconds, seed=self.seed,
            variations=1, steps=self.steps, guidance=self.guidance, residual_guidance=self.residual_guidance,
            temperature=self.temperature, topk=self.topk, **files, **server_ops.place(context, **files))

    def job_finished(self, context, state) -> None:
        global last_error
        last_error = "" if getattr(state, "state", "") == "done" else getattr(state, "message", "")


class _EditInPlace(DirectedOperator, _Generation, _JobBase):
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

    def invoke(self, context, event):
        self.fill_direction(context)
        return _JobBase.invoke(self, context, event)

    def job_prepare(self, context):
        return prepare_timeline(context, active_object(context), self.plan(), prompt=self.prompt,
                                generation=self.generation(context), keep_original=self.keep_original,
                                direction=self.direction())

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
        return lambda lo, hi, fps: windows.plan_range(lo, hi, s, e, fps)


class MOMASK_OT_extend(_EditInPlace, bpy.types.Operator):
    """Generate new seconds before the start or after the end of the active armature's animation"""

    bl_idname = "momask.extend"
    bl_label = "Extend Animation"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Extending"
    done_message = "Added frames {lo}-{hi} to '{action}'"

    seconds: bpy.props.FloatProperty(name="Seconds", default=2.0, min=0.0, max=60.0,
                                     description=f"New motion to add (at most {windows.MAX_EXTEND_SECONDS:g} s)")
    side: bpy.props.EnumProperty(name="Side", items=SIDE_ITEMS, default="AFTER")

    def plan(self):
        seconds, side = self.seconds, self.side
        return lambda lo, hi, fps: windows.plan_extension(lo, hi, seconds, side, fps)


class MOMASK_OT_generate_sequence(DirectedOperator, _Generation, _JobBase, bpy.types.Operator):
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
    root_motion: bpy.props.EnumProperty(name="Root motion", items=ROOT_MOTION_ITEMS, default="full")
    foot_lock: bpy.props.BoolProperty(name="Lock feet", default=True)

    def _sequence_text(self, context) -> str:
        """The rows to generate: the panel's rows, the `sequence` text, or the prompt for `seconds`."""
        if self.use_scene_rows:
            rows = context.scene.momask_timeline.rows
            if not rows:
                raise MomaskError("the prompt sequence has no rows: add a row with a prompt and its seconds")
            return "\n".join(f"{r.seconds}\t{r.prompt}" for r in rows)
        if self.sequence.strip():
            return self.sequence
        if not self.seconds > 0 or self.seconds > MAX_LONG_SECONDS:
            raise MomaskError(f"the length must be more than 0 and at most {MAX_LONG_SECONDS:g} s, "
                              f"got {self.seconds:g} s")
        if not self.prompt.strip():
            raise MomaskError("the prompt is empty: describe the motion in a sentence")
        return f"{self.seconds}\t{self.prompt.strip()}"

    def job_prepare(self, context):
        segments = bake_job.sequence_segments(self._sequence_text(context))
        title = " / ".join(dict.fromkeys(s.prompt for s in segments))
        seconds = sum(s.frames for s in segments) / FPS
        return bake_job.prepare(context, active_object(context), prompt=title,
                                generation=self.generation(context, title, seconds), root_motion=self.root_motion,
                                foot_lock=self.foot_lock, segments=segments, direction=self.direction())

    def invoke(self, context, event):
        self.fill_direction(context)
        return _JobBase.invoke(self, context, event)

    def job_compute(self, job, progress):
        return bake_job.compute(job, progress)

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
                lo, hi = windows.range_from_preview(scene.use_preview_range, scene.frame_preview_start,
                                                    scene.frame_preview_end)
            else:
                obj = active_object(context)
                if obj is None or obj.type != "ARMATURE":
                    raise MomaskError("select the armature whose keys set the range")
                lo, hi = windows.range_from_keys(selected_key_frames(obj))
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        props = scene.momask_timeline
        props.frame_start, props.frame_end = lo, hi
        return {"FINISHED"}


classes = (MOMASK_OT_inpaint, MOMASK_OT_extend, MOMASK_OT_generate_sequence, MOMASK_OT_inpaint_range)

"""Operators: thin wrappers that read their inputs, call the jobs (`jobs.bake`), and report errors.

Generate is a `modal.ModalJobOperator`: from the sidebar (`invoke`) the model runs in a worker
thread with progress and Esc to cancel; from scripts and the command line (`execute`) the same
three steps run in a row.
"""
from __future__ import annotations

import random

import bpy

from ..jobs import bake, modal
from ..jobs.worker import DONE, LOADING_STAGE
from ..scene import variations
from . import preferences, server_ops
from .direct_panel import DirectedOperator
from .properties import DEFAULTS, MAX_SECONDS, MAX_STEPS, MAX_VARIATIONS, ROOT_MOTION_ITEMS, active_object

# The last finished Generate, for scripts (its bakes, joints and actions); the command lines call jobs.bake.run.
last_job: bake.BakeJob | None = None
last_actions: list = []
last_error = ""

MAX_SEED = 2**31 - 1
SCENE_SETTINGS = ("prompt", "seed", "variations", "steps", "guidance", "residual_guidance", "temperature", "topk",
                  "root_motion", "foot_lock")
SKIP = {"SKIP_SAVE"}
MODEL_SHARE = 0.9  # of the progress bar; the rest is the bake (retargeting, foot lock)


def _settings(context):
    return getattr(context.scene, "momask", None)


class MOMASK_OT_generate(DirectedOperator, modal.ModalJobOperator, bpy.types.Operator):
    """Generate a motion from the prompt (or bake a motion file) onto the active armature"""

    bl_idname = "momask.generate"
    bl_label = "Generate Motion"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "MoMask"
    # SKIP: the sidebar's settings are the memory, not the last call's arguments

    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does, in a sentence", options=SKIP)
    seconds: bpy.props.FloatProperty(name="Seconds", default=4.0, min=0.0, max=MAX_SECONDS, options=SKIP,
                                     description="Length of the motion; 0 lets the model choose")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0, options=SKIP)
    variations: bpy.props.IntProperty(name="Variations", default=1, min=1, max=MAX_VARIATIONS, options=SKIP)
    steps: bpy.props.IntProperty(name="Steps", default=DEFAULTS["steps"], min=1, max=MAX_STEPS, options=SKIP)
    guidance: bpy.props.FloatProperty(name="Guidance", default=DEFAULTS["guidance"], min=0.0, max=20.0, options=SKIP)
    residual_guidance: bpy.props.FloatProperty(name="Residual guidance", default=DEFAULTS["residual_guidance"],
                                               min=0.0, max=20.0, options=SKIP)
    temperature: bpy.props.FloatProperty(name="Temperature", default=DEFAULTS["temperature"], min=0.01, max=5.0,
                                         options=SKIP)
    topk: bpy.props.FloatProperty(name="Top-k", default=DEFAULTS["topk"], min=0.0, max=0.99, options=SKIP)
    device: bpy.props.StringProperty(name="Device", default="", options=SKIP,
                                     description="cpu, cuda or auto; empty: preferences")
    checkpoints: bpy.props.StringProperty(name="Checkpoints", subtype="DIR_PATH", options=SKIP,
                                          description="Overrides the preferences' checkpoint folder")
    clip: bpy.props.StringProperty(name="CLIP file", subtype="FILE_PATH", options=SKIP,
                                   description="Overrides the preferences' CLIP file")
    source: bpy.props.StringProperty(name="Motion file", subtype="FILE_PATH", options=SKIP,
                                     description="Bake this .bvh or HumanML3D .npy instead of generating")
    root_motion: bpy.props.EnumProperty(name="Root motion", items=ROOT_MOTION_ITEMS, default="full", options=SKIP)
    foot_lock: bpy.props.BoolProperty(name="Lock feet", default=True, options=SKIP,
                                      description="Pin planted feet with a leg IK so they don't slide")

    def _generation(self, context) -> bake.Generation:
        prefs = preferences.get(context)
        files = dict(checkpoints=bpy.path.abspath(self.checkpoints or (prefs.checkpoints if prefs else "")),
                     clip=bpy.path.abspath(self.clip or (prefs.clip if prefs else "")),
                     device=self.device or preferences.model_device(prefs))
        return bake.Generation(
            prompt=self.prompt.strip(), seconds=self.seconds if self.seconds > 0 else None, seed=self.seed,
            variations=self.variations, steps=self.steps, guidance=self.guidance,
            residual_guidance=self.residual_guidance, temperature=self.temperature, topk=self.topk,
            **files, **server_ops.place(context, **files))

    def fill_from_scene(self, context) -> None:
        """The sidebar's settings for every property the caller did not set explicitly."""
        settings = _settings(context)
        if settings is None:
            return
        for name in SCENE_SETTINGS:
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(settings, name))
        if not self.properties.is_property_set("seconds"):
            self.seconds = 0.0 if settings.auto_length else settings.seconds

    def invoke(self, context, event):
        self.fill_from_scene(context)
        self.fill_direction(context)
        return modal.ModalJobOperator.invoke(self, context, event)

    # --- the job: prepare (main thread) → compute (worker) → apply (main thread)

    def job_prepare(self, context):
        return bake.prepare(context, active_object(context), prompt=self.prompt,
                           generation=None if self.source else self._generation(context),
                           source_path=bpy.path.abspath(self.source) if self.source else "",
                           root_motion=self.root_motion, foot_lock=self.foot_lock, direction=self.direction())

    def job_compute(self, bake_job, progress):
        if bake_job.generation is None:
            progress("bake", MODEL_SHARE)
            return bake.compute(bake_job)

        def model_progress(stage: str, fraction: float) -> None:  # a cancel raises JobCancelled: the worker stops
            if stage == "done":  # the model is done: retargeting comes next
                progress("bake", MODEL_SHARE)
            else:
                progress(stage, MODEL_SHARE * fraction)

        model_progress(LOADING_STAGE, 0.0)  # replaced by 'text' at once when the model is in memory
        return bake.compute(bake_job, progress=model_progress)

    def job_apply(self, context, bake_job):
        global last_job, last_actions
        actions = bake.apply(context, bake_job)
        last_job, last_actions = bake_job, actions
        bake.record_variations(context, bake_job, actions)
        frames = bake_job.bakes[0].frames
        if len(actions) > 1:
            return f"{len(actions)} variations of '{bake_job.action_name}' ({frames} frames) on {bake_job.object_name}"
        return f"'{actions[0].name}': {frames} frames on {bake_job.object_name}"

    def job_finished(self, context, state):
        global last_error
        last_error = "" if state.state == DONE else state.message


class MOMASK_OT_cancel_job(bpy.types.Operator):
    """Stop the running MoMask job; the scene stays as it was"""

    bl_idname = "momask.cancel_job"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return modal.busy()

    def execute(self, context):
        modal.request_cancel()
        return {"FINISHED"}


class MOMASK_OT_randomize_seed(bpy.types.Operator):
    """Pick a new random seed for the next generation"""

    bl_idname = "momask.randomize_seed"
    bl_label = "Randomize Seed"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _settings(context) is not None

    def execute(self, context):
        settings = _settings(context)
        old = settings.seed
        while settings.seed == old:
            settings.seed = random.randint(0, MAX_SEED)
        return {"FINISHED"}


class MOMASK_OT_use_variation(bpy.types.Operator):
    """Play this variation on the armature (the others are kept)"""

    bl_idname = "momask.use_variation"
    bl_label = "Use Variation"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(name="Variation", min=0, description="Position in the list, from 0")

    @classmethod
    def poll(cls, context):
        settings = _settings(context)
        return settings is not None and len(settings.variation_items) > 0

    def execute(self, context):
        settings = _settings(context)
        try:
            name = variations.switch(settings, self.index)
        except LookupError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        settings["variation_index"] = self.index  # the list follows, without re-running its update
        self.report({"INFO"}, f"Playing '{name}'")
        return {"FINISHED"}


class MOMASK_OT_remove_other_variations(bpy.types.Operator):
    """Keep the chosen variation and delete the other variations' actions"""

    bl_idname = "momask.remove_other_variations"
    bl_label = "Keep This, Remove Others"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = _settings(context)
        return settings is not None and len(settings.variation_items) > 1 and not modal.busy()

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        settings = _settings(context)
        keep = variations.clamp(settings.variation_index, len(settings.variation_items))
        try:
            removed, busy = variations.remove_others(settings, keep)
        except LookupError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        note = f"; kept {', '.join(busy)} (used elsewhere)" if busy else ""
        self.report({"INFO"}, f"Removed {len(removed)} other variation(s){note}")
        return {"FINISHED"}


class MOMASK_OT_unload_model(bpy.types.Operator):
    """Free the memory the loaded MoMask model takes (it loads again on the next generation)"""

    bl_idname = "momask.unload_model"
    bl_label = "Unload Model"

    @classmethod
    def poll(cls, context):
        from ..jobs import model_cache

        return model_cache.loaded() and not modal.busy()

    def execute(self, context):
        from ..jobs import model_cache

        model_cache.unload()
        import gc

        gc.collect()
        self.report({"INFO"}, "MoMask model unloaded")
        return {"FINISHED"}


classes = (MOMASK_OT_generate, MOMASK_OT_cancel_job, MOMASK_OT_randomize_seed, MOMASK_OT_use_variation,
           MOMASK_OT_remove_other_variations, MOMASK_OT_unload_model)

"""Operators: thin wrappers that read their inputs, call `job`, and report errors."""
from __future__ import annotations

import bpy

from . import job as jobs
from . import preferences
from .errors import MomaskError

ROOT_MOTION_ITEMS = [
    ("full", "Full", "Move the character along the generated path"),
    ("in-place", "In place", "Keep the hips above their rest position (height still follows)"),
    ("keep", "Keep existing path", "Keep the root bone's location curves of the current action"),
]

# The last finished job, for scripts and the command line (summary, BVH export).
last_job: jobs.BakeJob | None = None
last_actions: list = []
last_error = ""


def _active_armature(context):
    return context.active_object if context.active_object is not None else context.view_layer.objects.active


class MOMASK_OT_generate(bpy.types.Operator):
    """Generate a motion from the prompt (or bake a motion file) onto the active armature"""

    bl_idname = "momask.generate"
    bl_label = "Generate Motion"
    bl_options = {"REGISTER", "UNDO"}

    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does, in a sentence")
    seconds: bpy.props.FloatProperty(name="Seconds", default=4.0, min=0.0, max=9.8,
                                     description="Length of the motion; 0 lets the model choose")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    variations: bpy.props.IntProperty(name="Variations", default=1, min=1, max=16)
    steps: bpy.props.IntProperty(name="Steps", default=18, min=1, max=100)
    guidance: bpy.props.FloatProperty(name="Guidance", default=4.0, min=0.0, max=20.0)
    residual_guidance: bpy.props.FloatProperty(name="Residual guidance", default=5.0, min=0.0, max=20.0)
    temperature: bpy.props.FloatProperty(name="Temperature", default=1.0, min=1e-6, max=5.0)
    topk: bpy.props.FloatProperty(name="Top-k", default=0.9, min=0.0, max=0.999)
    device: bpy.props.StringProperty(name="Device", default="", description="cpu, cuda or auto; empty: preferences")
    checkpoints: bpy.props.StringProperty(name="Checkpoints", subtype="DIR_PATH",
                                          description="Overrides the preferences' checkpoint folder")
    clip: bpy.props.StringProperty(name="CLIP file", subtype="FILE_PATH",
                                   description="Overrides the preferences' CLIP file")
    source: bpy.props.StringProperty(name="Motion file", subtype="FILE_PATH",
                                     description="Bake this .bvh or HumanML3D .npy instead of generating")
    root_motion: bpy.props.EnumProperty(name="Root motion", items=ROOT_MOTION_ITEMS, default="full")
    foot_lock: bpy.props.BoolProperty(name="Lock feet", default=True,
                                      description="Pin planted feet with a leg IK so they don't slide")

    def _generation(self, context) -> jobs.Generation:
        prefs = preferences.get(context)
        return jobs.Generation(
            prompt=self.prompt.strip(), seconds=self.seconds if self.seconds > 0 else None, seed=self.seed,
            variations=self.variations, steps=self.steps, guidance=self.guidance,
            residual_guidance=self.residual_guidance, temperature=self.temperature, topk=self.topk,
            checkpoints=bpy.path.abspath(self.checkpoints or (prefs.checkpoints if prefs else "")),
            clip=bpy.path.abspath(self.clip or (prefs.clip if prefs else "")),
            device=self.device or (prefs.device if prefs else "cpu"))

    def execute(self, context):
        global last_job, last_actions, last_error
        try:
            job = jobs.prepare(context, _active_armature(context), prompt=self.prompt,
                               generation=None if self.source else self._generation(context),
                               source_path=bpy.path.abspath(self.source) if self.source else "",
                               root_motion=self.root_motion, foot_lock=self.foot_lock)
            jobs.compute(job)
            actions = jobs.apply(context, job)
        except MomaskError as err:
            last_error = str(err)
            self.report({"ERROR"}, last_error)
            return {"CANCELLED"}
        last_job, last_actions = job, actions
        self.report({"INFO"}, f"'{actions[0].name}': {job.bakes[0].frames} frames on {job.object_name}")
        return {"FINISHED"}


class MOMASK_OT_detect_bone_map(bpy.types.Operator):
    """Detect which bone plays each joint and store the map on the armature"""

    bl_idname = "momask.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .bone_map import detect_bone_map, map_to_json
        from .rig_reader import bone_infos, check_armature

        obj = _active_armature(context)
        try:
            check_armature(obj)
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        bmap = detect_bone_map(bone_infos(obj))
        obj[jobs.BONE_MAP_PROPERTY] = map_to_json(bmap)
        self.report({"INFO"}, f"{len(bmap)} of 22 joints mapped")
        return {"FINISHED"}


class MOMASK_OT_save_bone_map(bpy.types.Operator):
    """Save the armature's bone map as a JSON preset"""

    bl_idname = "momask.save_bone_map"
    bl_label = "Save Bone Map Preset"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")

    def execute(self, context):
        from .bone_map import save_preset

        obj = _active_armature(context)
        try:
            from .rig_reader import check_armature

            check_armature(obj)
            save_preset(bpy.path.abspath(self.filepath), jobs.resolve_bone_map(obj), obj.name)
        except (MomaskError, OSError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class MOMASK_OT_load_bone_map(bpy.types.Operator):
    """Load a JSON bone-map preset onto the armature"""

    bl_idname = "momask.load_bone_map"
    bl_label = "Load Bone Map Preset"
    bl_options = {"REGISTER", "UNDO"}
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")

    def execute(self, context):
        from .bone_map import load_preset, map_to_json
        from .rig_reader import check_armature

        obj = _active_armature(context)
        try:
            check_armature(obj)
            bmap = load_preset(bpy.path.abspath(self.filepath), [b.name for b in obj.data.bones])
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        obj[jobs.BONE_MAP_PROPERTY] = map_to_json(bmap)
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


classes = (MOMASK_OT_generate, MOMASK_OT_detect_bone_map, MOMASK_OT_save_bone_map, MOMASK_OT_load_bone_map)

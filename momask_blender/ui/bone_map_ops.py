"""Bone-map operators: re-detect the map, save it as a JSON preset, load a preset.

The map lives on the armature (`momask_bone_map`, a JSON string) so that it travels with the
file; presets are plain JSON files that another rig of the same convention can load.
"""
from __future__ import annotations

import bpy

from ..errors import MomaskError
from ..jobs import modal
from ..scene import bone_maps
from .properties import active_object, target_armature


class _BoneMapOperator:
    @classmethod
    def poll(cls, context):
        return target_armature(context) is not None and not modal.busy()


class MOMASK_OT_detect_bone_map(_BoneMapOperator, bpy.types.Operator):
    """Detect which bone plays each joint and store the map on the armature (replaces your edits)"""

    bl_idname = "momask.detect_bone_map"
    bl_label = "Re-detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..scene.rig_reader import check_armature
        from .properties import refresh_mapping

        obj = active_object(context)
        try:
            check_armature(obj)
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        found = bone_maps.detection_for(obj)
        if found.problem:
            self.report({"ERROR"}, f"'{obj.name}' does not look like a humanoid: {found.problem}; map its bones by "
                                   "hand or load a preset")
            return {"CANCELLED"}
        bone_maps.store_detection(obj, found)
        refresh_mapping(context)
        unsure = found.unsure()
        self.report({"WARNING"} if unsure or found.warnings else {"INFO"},
                    f"{len(found.found)} of 22 joints mapped" + (f"; unsure: {', '.join(unsure)}" if unsure else "")
                    + "".join(f"; {w}" for w in found.warnings if not w.startswith("unsure")))
        return {"FINISHED"}


class MOMASK_OT_save_bone_map(_BoneMapOperator, bpy.types.Operator):
    """Save the armature's bone map as a JSON preset"""

    bl_idname = "momask.save_bone_map"
    bl_label = "Save Bone Map Preset"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        from ..rig.bone_map import save_preset
        from ..scene.rig_reader import check_armature

        obj = active_object(context)
        try:
            check_armature(obj)
            if not self.filepath:
                raise MomaskError("no preset file chosen")
            save_preset(bpy.path.abspath(self.filepath), bone_maps.resolve_bone_map(obj), obj.name)
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Bone map saved to {self.filepath}")
        return {"FINISHED"}

    def invoke(self, context, event):
        from ..rig.bone_rows import preset_name

        if not self.filepath:
            self.filepath = preset_name(target_armature(context).name)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class MOMASK_OT_load_bone_map(_BoneMapOperator, bpy.types.Operator):
    """Load a JSON bone-map preset onto the armature"""

    bl_idname = "momask.load_bone_map"
    bl_label = "Load Bone Map Preset"
    bl_options = {"REGISTER", "UNDO"}
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        from ..rig.bone_map import load_preset
        from ..scene.rig_reader import check_armature
        from .properties import refresh_mapping

        obj = active_object(context)
        try:
            check_armature(obj)
            bmap = load_preset(bpy.path.abspath(self.filepath), [b.name for b in obj.data.bones])
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        bone_maps.store_bone_map(obj, bmap)  # the user's map: detection's record of the old one goes
        refresh_mapping(context)
        self.report({"INFO"}, f"{len(bmap)} of 22 joints mapped from {bpy.path.basename(self.filepath)}")
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


classes = (MOMASK_OT_detect_bone_map, MOMASK_OT_save_bone_map, MOMASK_OT_load_bone_map)

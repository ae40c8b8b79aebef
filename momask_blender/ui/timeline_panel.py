"""The sidebar's timeline section (MoMask tab): regenerate a range, extend, prompt sequences.

Its settings live on the scene (`Scene.momask_timeline`), the prompt-sequence rows as a
collection in that property group.
"""
from __future__ import annotations

import bpy

from model_core.settings import MAX_LONG_SECONDS

from ..rig import windows
from .properties import target_armature


class MOMASK_PG_sequence_row(bpy.types.PropertyGroup):
    prompt: bpy.props.StringProperty(name="Prompt", description="What happens in this part")
    seconds: bpy.props.FloatProperty(name="Seconds", default=4.0, min=0.2, max=MAX_LONG_SECONDS,
                                     description="How long this part lasts")


class MOMASK_PG_timeline(bpy.types.PropertyGroup):
    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does in the range")
    frame_start: bpy.props.IntProperty(name="Start", default=1, description="First frame to regenerate")
    frame_end: bpy.props.IntProperty(name="End", default=40, description="Last frame to regenerate")
    keep_original: bpy.props.BoolProperty(name="Keep a copy of the original", default=False)
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    extend_seconds: bpy.props.FloatProperty(name="Seconds", default=2.0, min=0.2,
                                            max=windows.MAX_EXTEND_SECONDS)
    extend_side: bpy.props.EnumProperty(name="Side", items=[("BEFORE", "Before", ""), ("AFTER", "After", "")],
                                        default="AFTER")
    rows: bpy.props.CollectionProperty(type=MOMASK_PG_sequence_row)
    active_row: bpy.props.IntProperty(default=0)


class MOMASK_OT_sequence_row(bpy.types.Operator):
    """Add or remove a row of the prompt sequence"""

    bl_idname = "momask.sequence_row"
    bl_label = "Prompt Sequence Row"
    bl_options = {"REGISTER", "UNDO"}

    action: bpy.props.EnumProperty(items=[("ADD", "Add", ""), ("REMOVE", "Remove", "")])

    def execute(self, context):
        props = context.scene.momask_timeline
        if self.action == "ADD":
            row = props.rows.add()
            row.prompt, row.seconds = "", 4.0
            props.active_row = len(props.rows) - 1
        elif len(props.rows):
            props.rows.remove(min(props.active_row, len(props.rows) - 1))
            props.active_row = max(0, min(props.active_row, len(props.rows) - 1))
        return {"FINISHED"}


class MOMASK_UL_sequence(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.prop(item, "prompt", text="", emboss=False)
        row.prop(item, "seconds", text="")


def covered_note(context) -> str:
    """'range rounded outward to whole tokens: frames X–Y' for the range in the fields, or ''."""
    from ..rig.resample import scene_fps
    from ..scene.animation import animation_range, channelbag

    obj = target_armature(context)
    props = context.scene.momask_timeline
    if obj is None:
        return ""
    try:
        _, fcurves = channelbag(obj)
        lo, hi = animation_range(fcurves)
        render = context.scene.render
        window = windows.plan_range(lo, hi, props.frame_start, props.frame_end,
                                    scene_fps(render.fps, render.fps_base))
    except Exception as err:  # the note only informs; the operator reports the same problem
        return str(err).split(":")[0]
    x, y = window.covered()
    return f"range rounded outward to whole tokens: frames {x}-{y}"


class MOMASK_PT_timeline(bpy.types.Panel):
    """Under the sidebar's MoMask panel (panels.py), in the same tab."""

    bl_idname = "MOMASK_PT_timeline"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MoMask"
    bl_parent_id = "MOMASK_PT_main"
    bl_label = "Timeline"
    bl_order = 20

    def draw(self, context):
        props = context.scene.momask_timeline
        layout = self.layout
        layout.prop(props, "prompt")
        box = layout.box()
        box.label(text="Regenerate a range")
        row = box.row(align=True)
        row.prop(props, "frame_start")
        row.prop(props, "frame_end")
        row = box.row(align=True)
        row.operator("momask.inpaint_range", text="Preview Range").source = "PREVIEW"
        row.operator("momask.inpaint_range", text="Selected Keys").source = "KEYS"
        note = covered_note(context)
        if note:
            box.label(text=note, icon="INFO")
        box.prop(props, "keep_original")
        box.prop(props, "seed")
        op = box.operator("momask.inpaint", icon="SEQ_SEQUENCER")
        op.prompt, op.frame_start, op.frame_end = props.prompt, props.frame_start, props.frame_end
        op.keep_original, op.seed = props.keep_original, props.seed

        box = layout.box()
        box.label(text="Extend")
        row = box.row(align=True)
        row.prop(props, "extend_side", expand=True)
        row.prop(props, "extend_seconds")
        op = box.operator("momask.extend", icon="FF")
        op.prompt, op.seconds, op.side, op.seed = props.prompt, props.extend_seconds, props.extend_side, props.seed
        op.keep_original = props.keep_original

        box = layout.box()
        box.label(text="Prompt sequence (any length)")
        row = box.row()
        row.template_list("MOMASK_UL_sequence", "", props, "rows", props, "active_row", rows=3)
        col = row.column(align=True)
        col.operator("momask.sequence_row", icon="ADD", text="").action = "ADD"
        col.operator("momask.sequence_row", icon="REMOVE", text="").action = "REMOVE"
        total = sum(r.seconds for r in props.rows)
        box.label(text=f"{len(props.rows)} row{'' if len(props.rows) == 1 else 's'}, {total:.1f} s")
        op = box.operator("momask.generate_sequence", icon="PLAY")
        op.use_scene_rows, op.seed = True, props.seed


classes = (MOMASK_PG_sequence_row, MOMASK_PG_timeline, MOMASK_OT_sequence_row, MOMASK_UL_sequence,
           MOMASK_PT_timeline)


def register_properties() -> None:
    bpy.types.Scene.momask_timeline = bpy.props.PointerProperty(type=MOMASK_PG_timeline)


def unregister_properties() -> None:
    if hasattr(bpy.types.Scene, "momask_timeline"):
        del bpy.types.Scene.momask_timeline

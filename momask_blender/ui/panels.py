"""The 3D Viewport's sidebar tab "MoMask": prompt to motion, variations, and the bone map.

Panels only draw: every change goes through an operator or a property (so each is one undo
step). Job state comes from `WindowManager.momask_job`, kept up to date by `modal.py`.
"""
from __future__ import annotations

import bpy

from .properties import target_armature


def _settings(context):
    return getattr(context.scene, "momask", None)


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MoMask"

    @classmethod
    def poll(cls, context):
        return _settings(context) is not None


class MOMASK_PT_main(_SidebarPanel, bpy.types.Panel):
    bl_idname = "MOMASK_PT_main"
    bl_label = "MoMask"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = _settings(context)
        job = context.window_manager.momask_job
        obj = target_armature(context)

        row = layout.row()
        if obj is not None:
            row.label(text=obj.name, icon="ARMATURE_DATA")
            if obj.library is not None:
                sub = layout.row()
                sub.alert = True
                sub.label(text="Linked armature: make it local first", icon="LIBRARY_DATA_DIRECT")
        else:
            row.label(text="Select an armature to animate", icon="INFO")

        col = layout.column()
        col.use_property_split = False
        col.prop(settings, "prompt", text="", icon="TEXT")

        col = layout.column()
        row = col.row(align=True)
        sub = row.row(align=True)
        sub.active = not settings.auto_length
        sub.prop(settings, "seconds")
        row.prop(settings, "auto_length", text="", icon="AUTO")
        row = col.row(align=True)
        row.prop(settings, "seed")
        row.operator("momask.randomize_seed", text="", icon="FILE_REFRESH")
        col.prop(settings, "variations")
        col.prop(settings, "root_motion")
        col.prop(settings, "foot_lock")

        draw_job(layout, job, "momask.generate", "Generate", "PLAY", enabled=obj is not None)


def draw_job(layout, job, operator: str, text: str, icon: str, *, enabled: bool = True) -> None:
    """The Generate button, or the progress bar and Cancel while a job runs, then the last message.

    Other panels (the inpaint section) call it with their own operator.
    """
    if job.running:
        col = layout.column(align=True)
        stage = "cancelling…" if job.cancel_requested else (job.stage or "starting")
        col.progress(factor=job.progress, type="BAR", text=f"{job.label}: {stage}")
        row = col.row(align=True)
        row.scale_y = 1.3
        row.operator("momask.cancel_job", text="Cancel", icon="CANCEL")
        return
    row = layout.row()
    row.scale_y = 1.5
    row.enabled = enabled
    row.operator(operator, text=text, icon=icon)
    if job.message and job.state in ("failed", "cancelled"):
        box = layout.box()
        box.alert = job.state == "failed"
        col = box.column(align=True)
        for k, line in enumerate(_wrap(job.message, 48)[:6]):
            col.label(text=line, icon=("ERROR" if job.state == "failed" else "INFO") if k == 0 else "BLANK1")


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines():
        words, line = para.split(), ""
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        if line:
            lines.append(line)
    return lines


class MOMASK_PT_advanced(_SidebarPanel, bpy.types.Panel):
    bl_idname = "MOMASK_PT_advanced"
    bl_label = "Advanced"
    bl_parent_id = "MOMASK_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = _settings(context)
        col = layout.column()
        for name in ("steps", "guidance", "residual_guidance", "temperature", "topk"):
            col.prop(settings, name)


class MOMASK_UL_variations(bpy.types.UIList):
    """One row per variation; clicking a row plays it on the armature."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        if item.action is None:
            layout.label(text=f"{item.name} (deleted)", icon="ERROR")
            return
        obj = bpy.data.objects.get(data.variation_armature)
        playing = obj is not None and obj.animation_data is not None and obj.animation_data.action == item.action
        row = layout.row(align=True)
        row.label(text=f"v{index + 1}", icon="PLAY" if playing else "ACTION")
        row.prop(item.action, "name", text="", emboss=False)
        row.label(text=f"seed {item.seed}")


class MOMASK_PT_variations(_SidebarPanel, bpy.types.Panel):
    bl_idname = "MOMASK_PT_variations"
    bl_label = "Variations"
    bl_parent_id = "MOMASK_PT_main"

    @classmethod
    def poll(cls, context):
        settings = _settings(context)
        return settings is not None and len(settings.variation_items) > 1

    def draw(self, context):
        layout = self.layout
        settings = _settings(context)
        obj = target_armature(context)
        if obj is None or obj.name != settings.variation_armature:
            layout.label(text=f"For '{settings.variation_armature}'", icon="ARMATURE_DATA")
        layout.template_list("MOMASK_UL_variations", "", settings, "variation_items", settings, "variation_index",
                             rows=3)
        layout.operator("momask.remove_other_variations", icon="TRASH")


class MOMASK_PT_bone_map(_SidebarPanel, bpy.types.Panel):
    bl_idname = "MOMASK_PT_bone_map"
    bl_label = "Bone Map"
    bl_parent_id = "MOMASK_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        return _settings(context) is not None and target_armature(context) is not None

    def draw(self, context):
        from ..rig.bone_map import missing_required
        from ..rig.bone_rows import rows, summary
        from .properties import editor_shown

        layout = self.layout
        obj = target_armature(context)
        settings = _settings(context)
        shown = editor_shown(obj)
        col = layout.column(align=True)
        lacking = missing_required(shown.bone_map)
        col.alert = bool(lacking or (shown.problem and shown.source != "stored"))
        col.label(text=summary(shown.bone_map, shown.source).split(";")[0], icon="ERROR" if col.alert else "BONE_DATA")
        if shown.problem and shown.source != "stored":
            _wrapped(col, "Not a humanoid: " + shown.problem, "ERROR")
        elif lacking:
            col.label(text=f"Required: {', '.join(lacking)}")
        for problem in shown.problems[:3]:
            col.label(text=problem, icon="ERROR")
        for warning in shown.warnings[:2]:
            _wrapped(col, warning, "INFO")

        row = layout.row(align=True)
        row.operator("momask.detect_bone_map", text="Re-detect", icon="VIEWZOOM")
        row.operator("momask.save_bone_map", text="Save", icon="EXPORT")
        row.operator("momask.load_bone_map", text="Load", icon="IMPORT")
        layout.prop(context.window_manager, "momask_show_mapping", toggle=True, icon="COLOR")

        grid = layout.column(align=True)
        grid.enabled = obj.library is None
        for r in rows(shown.bone_map, shown.found):
            row = grid.row(align=True)
            row.alert = r.missing or r.unsure
            split = row.split(factor=0.36, align=True)
            split.label(text=r.joint + (" *" if r.required else ""))
            split = split.split(factor=0.78, align=True)
            split.prop_search(settings.bone_map, r.joint, obj.data, "bones", text="")
            if r.missing:
                split.label(text="")
            elif r.confidence is None:
                split.label(text="", icon="HAND")  # the user's choice
            else:
                split.label(text=f"{round(100 * r.confidence)}%", icon="ERROR" if r.unsure else "NONE")


def _wrapped(layout, text: str, icon: str, width: int = 48) -> None:
    """A long message over a few label lines (the sidebar does not wrap labels)."""
    import textwrap

    for k, line in enumerate(textwrap.wrap(text, width)[:4]):
        layout.label(text=line, icon=icon if k == 0 else "BLANK1")


classes = (MOMASK_UL_variations, MOMASK_PT_main, MOMASK_PT_advanced, MOMASK_PT_variations, MOMASK_PT_bone_map)

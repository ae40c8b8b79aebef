"""The sidebar's "Direct" section (MoMask tab): keyed poses, a path curve, waypoints and reach
targets that Generate and Regenerate Range meet.

Its settings live on the scene (`Scene.momask_direct`). The operators that run a job read them
through `DirectedOperator`: its properties hold the same choices for scripts, and `invoke` fills
them from the scene. A target is an empty with two custom properties, `momask_frame` (when) and
`momask_joint` (pelvis for a waypoint, a hand or a foot for a reach target), in one collection.
"""
from __future__ import annotations

import bpy

from ..jobs.directing import Direction
from ..rig.directing import REACH_JOINTS
from ..scene.directing import FRAME_PROPERTY, JOINT_PROPERTY, WAYPOINT

KEY_ITEMS = [("NONE", "None", "Keyed poses are not used"),
             ("ALL", "All Keys", "Every keyed frame of the armature inside the generated frames becomes a pose"),
             ("SELECTED", "Selected Keys", "Only the frames of the selected keyframes become poses")]
# a waypoint, then each reach target the directing code knows (LEFT_HAND: "Left Hand", ...)
TARGET_ITEMS = [(WAYPOINT, "Waypoint", "The hips pass over this empty at its frame")] + [
    (kind, kind.replace("_", " ").title(), f"The {kind.replace('_', ' ').lower()} touches this empty at its frame")
    for kind in REACH_JOINTS]
TARGETS_COLLECTION = "MoMask Targets"
SKIP = {"SKIP_SAVE"}


def _is_curve(_self, obj) -> bool:
    return obj.type == "CURVE"


class MOMASK_PG_direct(bpy.types.PropertyGroup):
    enabled: bpy.props.BoolProperty(name="Direct", default=False,
                                    description="Generate and Regenerate Range meet the poses, path and targets below")
    use_keys: bpy.props.EnumProperty(name="Keyed Poses", items=KEY_ITEMS, default="NONE")
    path: bpy.props.PointerProperty(name="Path", type=bpy.types.Object, poll=_is_curve,
                                    description="A curve the hips follow (Bézier, NURBS or poly)")
    use_path_frames: bpy.props.BoolProperty(name="Path Frames", default=False,
                                            description="Follow the path between these frames, not over all the "
                                                        "generated frames")
    path_start: bpy.props.IntProperty(name="Start", default=1, description="Frame the hips are at the path's start")
    path_end: bpy.props.IntProperty(name="End", default=96, description="Frame the hips reach the path's end")
    face_path: bpy.props.BoolProperty(name="Face Along Path", default=True,
                                      description="The body faces along the path (off: the model's own walk is "
                                                  "turned onto the path, so a sidestep stays a sidestep)")
    targets: bpy.props.PointerProperty(name="Targets", type=bpy.types.Collection,
                                       description="A collection of empties: waypoints and reach targets")


def scene_direction(context) -> Direction | None:
    """The scene's Direct section as a `Direction`, or None when it is off."""
    props = getattr(context.scene, "momask_direct", None)
    if props is None or not props.enabled:
        return None
    return Direction(use_keys=props.use_keys, path=props.path.name if props.path else "",
                     path_start=props.path_start if props.use_path_frames else None,
                     path_end=props.path_end if props.use_path_frames else None, face_path=props.face_path,
                     targets=props.targets.name if props.targets else "")


class DirectedOperator:
    """Operator properties for directing (scripts set them; `invoke` copies the scene's section)."""

    use_keys: bpy.props.EnumProperty(name="Keyed poses", items=KEY_ITEMS, default="NONE", options=SKIP)
    path: bpy.props.StringProperty(name="Path", default="", options=SKIP, description="A curve object's name")
    path_start: bpy.props.IntProperty(name="Path start", default=-1, options=SKIP,
                                      description="Scene frame of the path's start; -1: the first generated frame")
    path_end: bpy.props.IntProperty(name="Path end", default=-1, options=SKIP,
                                    description="Scene frame of the path's end; -1: the last generated frame")
    face_path: bpy.props.BoolProperty(name="Face along path", default=True, options=SKIP)
    targets: bpy.props.StringProperty(name="Targets", default="", options=SKIP,
                                      description="A collection of waypoint and reach-target empties")
    constraints_file: bpy.props.StringProperty(name="Constraints file", default="", subtype="FILE_PATH",
                                               options=SKIP, description="JSON constraints (world positions, "
                                               "HumanML3D axes, 20 fps frames from the first generated frame)")

    def fill_direction(self, context) -> None:
        direction = scene_direction(context)
        if direction is None:
            return
        for name in ("use_keys", "path", "targets", "face_path"):
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(direction, name))
        for name in ("path_start", "path_end"):
            value = getattr(direction, name)
            if not self.properties.is_property_set(name) and value is not None:
                setattr(self, name, int(value))

    def direction(self) -> Direction:
        return Direction(use_keys=self.use_keys, path=self.path,
                         path_start=self.path_start if self.path_start >= 0 else None,
                         path_end=self.path_end if self.path_end >= 0 else None, face_path=self.face_path,
                         targets=self.targets,
                         constraints_file=bpy.path.abspath(self.constraints_file) if self.constraints_file else "")


class MOMASK_OT_add_target(bpy.types.Operator):
    """Add an empty at the 3D cursor that the body reaches at the current frame"""

    bl_idname = "momask.add_target"
    bl_label = "Add Target"
    bl_options = {"REGISTER", "UNDO"}

    kind: bpy.props.EnumProperty(name="Kind", items=TARGET_ITEMS, default=WAYPOINT)

    def execute(self, context):
        scene = context.scene
        props = scene.momask_direct
        collection = props.targets
        if collection is None:
            collection = bpy.data.collections.new(TARGETS_COLLECTION)
            scene.collection.children.link(collection)
            props.targets = collection
        label = dict((k, n) for k, n, _ in TARGET_ITEMS)[self.kind]
        empty = bpy.data.objects.new(f"{label} {scene.frame_current}", None)
        empty.empty_display_type = "PLAIN_AXES" if self.kind == WAYPOINT else "SPHERE"
        empty.empty_display_size = 0.1
        empty.location = scene.cursor.location
        empty[FRAME_PROPERTY] = scene.frame_current
        empty[JOINT_PROPERTY] = self.kind
        collection.objects.link(empty)
        props.enabled = True
        return {"FINISHED"}


class MOMASK_PT_direct(bpy.types.Panel):
    """Under the sidebar's MoMask panel: what Generate and Regenerate Range must meet."""

    bl_idname = "MOMASK_PT_direct"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MoMask"
    bl_parent_id = "MOMASK_PT_main"
    bl_label = "Direct"
    bl_order = 10
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        return getattr(context.scene, "momask_direct", None) is not None

    def draw_header(self, context):
        self.layout.prop(context.scene.momask_direct, "enabled", text="")

    def draw(self, context):
        props = context.scene.momask_direct
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.active = props.enabled
        layout.prop(props, "use_keys")
        col = layout.column()
        col.prop(props, "path")
        if props.path is not None:
            row = col.row(align=True, heading="Path Frames")
            row.prop(props, "use_path_frames", text="")
            sub = row.row(align=True)
            sub.active = props.use_path_frames
            sub.prop(props, "path_start", text="")
            sub.prop(props, "path_end", text="")
            col.prop(props, "face_path")
        layout.prop(props, "targets")
        if props.targets is not None:
            box = layout.box()
            box.use_property_split = False
            empties = [o for o in props.targets.all_objects if o.type == "EMPTY"]
            for obj in sorted(empties, key=lambda o: o.name)[:12]:
                row = box.row(align=True)
                row.label(text=obj.name, icon="EMPTY_AXIS")
                if FRAME_PROPERTY in obj:
                    row.prop(obj, f'["{FRAME_PROPERTY}"]', text="Frame")
                row.label(text=str(obj.get(JOINT_PROPERTY, WAYPOINT)).replace("_", " ").title())
            if not empties:
                box.label(text="No target empties yet", icon="INFO")
        row = layout.row(align=True)
        row.operator("momask.add_target", text="Waypoint", icon="ADD").kind = WAYPOINT
        row.operator_menu_enum("momask.add_target", "kind", text="Reach", icon="ADD")


classes = (MOMASK_PG_direct, MOMASK_OT_add_target, MOMASK_PT_direct)


def register_properties() -> None:
    bpy.types.Scene.momask_direct = bpy.props.PointerProperty(type=MOMASK_PG_direct)


def unregister_properties() -> None:
    if hasattr(bpy.types.Scene, "momask_direct"):
        del bpy.types.Scene.momask_direct

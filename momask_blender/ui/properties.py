"""The sidebar's settings (one property group on the Scene, saved with the file) and the job's
display (one on the WindowManager, never saved).

`Scene.momask`: prompt, length, seed, variations, advanced settings (the official defaults,
`model_core.GenerationSettings`), root motion, foot lock, the last batch of variations, and the
bone-map editor's 22 rows. The rows are not stored here: each reads and writes the target
armature's own bone map (`scene.bone_maps`), so the editor and the bake can never disagree.
"""
from __future__ import annotations

import dataclasses

import bpy

from model_core.settings import (
    MAX_LONG_SECONDS,
    SERVER_MAX_STEPS,
    SERVER_MAX_VARIATIONS,
    GenerationSettings,
)

from ..rig.retarget import ROOT_MOTIONS
from ..rig.skeleton import JOINTS

# the model's own defaults (model_core.settings imports no PyTorch, so drawing the panel never does)
DEFAULTS = dataclasses.asdict(GenerationSettings())
MAX_SECONDS = MAX_LONG_SECONDS  # past one model call's 9.8 s the model continues window by window
# a request from the sidebar may go to a studio's server, so it keeps to the server's limits
MAX_STEPS = SERVER_MAX_STEPS
MAX_VARIATIONS = SERVER_MAX_VARIATIONS

_ROOT_MOTION_LABELS = {
    "full": ("Full", "Move the character along the generated path"),
    "in-place": ("In Place", "Keep the hips above their rest position (height still follows)"),
    "keep": ("Keep Rig's Path", "Keep the root bone's location curves of the current action"),
}
ROOT_MOTION_ITEMS = [(motion, *_ROOT_MOTION_LABELS[motion]) for motion in ROOT_MOTIONS]  # the retarget's choices


def active_object(context):
    """The object the operators work on: the context's active object, else the view layer's (a
    script's context may lack the first). Jobs check that it is an armature and say so if not."""
    obj = getattr(context, "active_object", None)
    if obj is None:
        view_layer = getattr(context, "view_layer", None)
        obj = view_layer.objects.active if view_layer is not None else None
    return obj


def target_armature(context):
    """The armature the sidebar works on: the active object, when it is an armature."""
    obj = active_object(context)
    return obj if obj is not None and obj.type == "ARMATURE" else None


# ----------------------------------------------------------------------------- variations


class MOMASK_PG_variation(bpy.types.PropertyGroup):
    # `name` (inherited) is the label the list shows
    action: bpy.props.PointerProperty(type=bpy.types.Action, name="Action")
    seed: bpy.props.IntProperty(name="Seed")


def _variation_index_changed(self, context):
    """One click in the list plays that variation (a UI change: Blender pushes its undo step)."""
    from ..scene import variations

    try:
        variations.switch(self, self.variation_index)
    except LookupError as err:
        print(f"MoMask: {err}")


# ----------------------------------------------------------------------------- bone-map rows


_SHOWN_CACHE: dict[tuple, object] = {}


def editor_shown(obj):
    """What the bone-map editor shows for an armature (`bone_rows.Shown`): its stored map (with the
    confidence detection recorded) or the detected one. Remembered per rest pose and stored map,
    since every row of the panel asks on every redraw."""
    from ..rig.bone_rows import effective
    from ..scene.bone_maps import BONE_MAP_INFO_PROPERTY, detection_bones, stored_bone_map
    from ..scene.rig_reader import rig_key

    stored, info = stored_bone_map(obj), obj.get(BONE_MAP_INFO_PROPERTY)
    key = (rig_key(obj), str(stored), str(info))
    if key not in _SHOWN_CACHE:
        if len(_SHOWN_CACHE) > 8:
            _SHOWN_CACHE.clear()
        _SHOWN_CACHE[key] = effective(stored, detection_bones(obj), info)
    return _SHOWN_CACHE[key]


def editor_map(obj) -> tuple[dict[str, str], str, list[str]]:
    """(map, 'stored' or 'detected', problems) of an armature, as the editor shows it."""
    shown = editor_shown(obj)
    return shown.bone_map, shown.source, shown.problems


def set_bone(obj, joint: str, bone: str) -> str | None:
    """Store the armature's map with `joint` → `bone`; returns the joint that gave the bone up."""
    from ..rig.bone_rows import STORED, set_joint
    from ..scene.bone_maps import detection_for, store_bone_map

    shown = editor_shown(obj)
    new, moved = set_joint(shown.bone_map, joint, bone, [b.name for b in obj.data.bones])
    # the first edit of a detected map keeps what detection knew of the other joints
    store_bone_map(obj, new, None if shown.source == STORED else detection_for(obj).info(), keep_record=True)
    refresh_mapping(bpy.context)
    return moved


def refresh_mapping(context) -> None:
    """The "Show Mapping" toggle (a WindowManager property, never saved): colour the target
    armature's mapped bones if it is on, else give every bone its own colours back. Called when the
    toggle changes and whenever the map changes while it is on (`scene.bone_colors` does the work)."""
    from ..rig.bone_rows import mapping_colors
    from ..scene import bone_colors

    wm = getattr(context, "window_manager", None)
    obj = target_armature(context)
    if not getattr(wm, "momask_show_mapping", False) or obj is None or obj.library is not None:
        bone_colors.hide_all()
        return
    shown = editor_shown(obj)
    for other in bone_colors.shown_objects():
        if other != obj:
            bone_colors.hide(other)
    bone_colors.show(obj, mapping_colors(shown.bone_map, shown.found))


def _bone_getter(joint: str):
    def get(self):
        obj = target_armature(bpy.context)
        return editor_map(obj)[0].get(joint, "") if obj is not None else ""

    return get


def _bone_setter(joint: str):
    def set_(self, value):
        from ..errors import MomaskError

        obj = target_armature(bpy.context)
        if obj is None or obj.library is not None:
            return
        try:
            set_bone(obj, joint, value)
        except MomaskError as err:  # a typed name that is no bone: the field keeps its value
            print(f"MoMask: {err}")

    return set_


def _bone_map_annotations() -> dict:
    return {
        joint: bpy.props.StringProperty(
            name=joint.replace("_", " ").title(), get=_bone_getter(joint), set=_bone_setter(joint),
            description=f"The bone that plays the HumanML3D joint '{joint}' (empty: not mapped)",
            options=set())
        for joint in JOINTS
    }


# A property group with one virtual field per joint, so the panel can `prop_search` each one.
MOMASK_PG_bone_map = type("MOMASK_PG_bone_map", (bpy.types.PropertyGroup,),
                          {"__annotations__": _bone_map_annotations(), "__module__": __name__,
                           "__doc__": "The target armature's bone map, joint by joint"})


# ----------------------------------------------------------------------------- the scene's settings


class MOMASK_PG_settings(bpy.types.PropertyGroup):
    prompt: bpy.props.StringProperty(name="Prompt", description="What the character does, in one sentence",
                                     default="a person walks forward")
    auto_length: bpy.props.BoolProperty(name="Auto", default=False,
                                        description="Let the model's length estimator choose the length")
    seconds: bpy.props.FloatProperty(name="Length", default=4.0, min=0.2, max=MAX_SECONDS, step=10, precision=1,
                                     unit="TIME_ABSOLUTE", description="Length of the motion in seconds")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0, description="Same seed, same motion")
    variations: bpy.props.IntProperty(name="Variations", default=1, min=1, max=MAX_VARIATIONS, soft_max=8,
                                      description="Generate this many motions in one batch (seed, seed+1, …); "
                                                  "each becomes its own Action")
    steps: bpy.props.IntProperty(name="Steps", default=DEFAULTS["steps"], min=1, max=MAX_STEPS,
                                 description="Remasking iterations of the masked transformer")
    guidance: bpy.props.FloatProperty(name="Guidance", default=DEFAULTS["guidance"], min=0.0, max=20.0,
                                      description="How closely the base tokens follow the prompt")
    residual_guidance: bpy.props.FloatProperty(name="Residual Guidance", default=DEFAULTS["residual_guidance"],
                                               min=0.0, max=20.0,
                                               description="Guidance of the residual (detail) transformer")
    temperature: bpy.props.FloatProperty(name="Temperature", default=DEFAULTS["temperature"], min=0.01, max=5.0,
                                         description="Sampling temperature: higher is more varied")
    topk: bpy.props.FloatProperty(name="Top-k", default=DEFAULTS["topk"], min=0.0, max=0.99,
                                  description="Keep only the top (1 - top-k) share of token choices")
    root_motion: bpy.props.EnumProperty(name="Root Motion", items=ROOT_MOTION_ITEMS, default="full")
    foot_lock: bpy.props.BoolProperty(name="Lock Feet", default=True,
                                      description="Pin planted feet with a leg IK so they don't slide")

    variation_items: bpy.props.CollectionProperty(type=MOMASK_PG_variation)
    variation_index: bpy.props.IntProperty(name="Variation", default=0, min=0, update=_variation_index_changed,
                                           description="The variation the armature plays")
    variation_armature: bpy.props.StringProperty(name="Armature", description="The armature the variations are for")

    bone_map: bpy.props.PointerProperty(type=MOMASK_PG_bone_map)


# ----------------------------------------------------------------------------- the job's display


class MOMASK_PG_job(bpy.types.PropertyGroup):
    """What the panel shows about the running (or last) job; lives on the WindowManager."""

    state: bpy.props.StringProperty(default="idle")
    label: bpy.props.StringProperty(default="")
    stage: bpy.props.StringProperty(default="")
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    message: bpy.props.StringProperty(default="")
    running: bpy.props.BoolProperty(default=False)
    cancel_requested: bpy.props.BoolProperty(default=False)


classes = (MOMASK_PG_variation, MOMASK_PG_bone_map, MOMASK_PG_settings, MOMASK_PG_job)

# (owner type, attribute, property factory) added by register(), removed by unregister()
def _show_mapping_changed(self, context):
    refresh_mapping(context)


POINTERS = (
    ("Scene", "momask", lambda: bpy.props.PointerProperty(type=MOMASK_PG_settings)),
    ("WindowManager", "momask_job", lambda: bpy.props.PointerProperty(type=MOMASK_PG_job)),
    # never saved (the WindowManager's own properties): the colours are a view, not the user's data
    ("WindowManager", "momask_show_mapping", lambda: bpy.props.BoolProperty(
        name="Show Mapping", default=False, update=_show_mapping_changed,
        description="Colour the mapped bones in the viewport (blue left, green right, purple centre, "
                    "red where detection is unsure); off gives the bones their own colours back")),
)


def register_properties() -> None:
    for owner, attr, factory in POINTERS:
        setattr(getattr(bpy.types, owner), attr, factory())


def unregister_properties() -> None:
    for owner, attr, _ in reversed(POINTERS):
        cls = getattr(bpy.types, owner)
        if hasattr(cls, attr):
            delattr(cls, attr)

"""The temporary scene a preview is rendered from, and where its camera looks.

`staged(scene, armature)` makes a scene of its own that shows the armature's character (its
skinned meshes, or, on a rig without one, a stand-in mesh of Blender's octahedral bone shapes
that the armature deforms), a checker floor under the whole motion and an orthographic camera
that follows the pelvis. The user's scene is not changed: their objects are only linked into the
temporary scene, and every datablock made for it is removed on the way out, so a file saved
afterwards holds none of it. The framing math (views, extents, scales, which bones show) is
`rig.framing`, plain NumPy.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..errors import MomaskError
from ..rig.framing import (
    FORWARD,
    Framing,
    Motion,
    bone_sides,
    common_ancestor,
    facing_from_hips,
    octahedra,
    shown_bones,
    view_axes,
)

SIDE_COLOURS = {"left": (0.16, 0.40, 0.86, 1.0), "right": (0.88, 0.33, 0.16, 1.0), "center": (0.25, 0.26, 0.31, 1.0)}
FLOOR_COLOURS = ((1.0, 1.0, 1.0, 1.0), (0.74, 0.76, 0.80, 1.0))
FRAMING_SAMPLES = 32      # frames looked at to size the camera to the whole motion
MAX_POINTS = 4000         # vertices per mesh and frame looked at for that
TAG = "momask_preview"    # the name of everything made here, so a leftover is easy to spot


# ----------------------------------------------------------------------------- the temporary scene


@dataclass
class Stage:
    """The temporary scene and what was made for it (everything in `made` is removed by `staged`)."""

    scene: object
    armature: object
    bone_map: dict[str, str]
    frame_range: tuple[int, int]
    made: list = field(default_factory=list)   # (bpy.data collection, datablock) pairs
    shown: list = field(default_factory=list)  # the mesh objects that are the character
    camera: object = None
    depsgraph: object = None
    stand_in: bool = False                     # the bones are shown, the rig has no mesh

    def new(self, collection, *args):
        """A new datablock named after TAG, remembered for removal."""
        block = collection.new(TAG, *args)
        self.made.append((collection, block))
        return block

    @property
    def root_bone(self) -> str:
        bone = self.bone_map.get("pelvis", "")
        return bone if bone in self.armature.pose.bones else ""


def character_meshes(arm) -> list:
    """The meshes the armature moves (an Armature modifier on it, or parented to it) that render."""
    out = []
    for obj in bpy.data.objects:
        if obj.type != "MESH" or obj.hide_render:
            continue
        deformed = any(m.type == "ARMATURE" and m.object == arm and m.show_render for m in obj.modifiers)
        if deformed or obj.parent == arm:
            out.append(obj)
    return out


def action_range(arm, scene) -> tuple[int, int]:
    """The frames of the armature's action, or the scene's range without one."""
    action = arm.animation_data.action if arm.animation_data else None
    if action is not None:
        lo, hi = action.frame_range
        return int(math.floor(lo)), int(math.ceil(hi))
    return scene.frame_start, scene.frame_end


@contextmanager
def staged(user_scene, arm, bone_map: Mapping[str, str] | None = None,
           frame_range: tuple[int, int] | None = None) -> Iterator[Stage]:
    """A temporary scene showing `arm`'s character with a following camera; everything made for it
    is removed afterwards (the Render Result image a render leaves too) and the user's scene is
    evaluated at its own frame again."""
    if arm is None or arm.type != "ARMATURE":
        raise MomaskError("the preview needs an armature")
    lo, hi = frame_range or action_range(arm, user_scene)
    images_before = set(bpy.data.images.keys())
    stage = Stage(scene=None, armature=arm, bone_map=dict(bone_map or {}), frame_range=(int(lo), int(max(lo, hi))))
    try:
        stage.scene = stage.new(bpy.data.scenes)
        _fill(stage, user_scene)
        yield stage
    finally:
        for collection, block in reversed(stage.made):
            collection.remove(block)
        for name in set(bpy.data.images.keys()) - images_before:
            bpy.data.images.remove(bpy.data.images[name])
        user_scene.frame_set(user_scene.frame_current, subframe=user_scene.frame_subframe)


def _fill(stage: Stage, user_scene) -> None:
    """The character, a camera that follows its root horizontally, the user's frame rate."""
    scene, arm = stage.scene, stage.armature
    scene.render.fps, scene.render.fps_base = user_scene.render.fps, user_scene.render.fps_base
    scene.frame_start, scene.frame_end = stage.frame_range
    scene.collection.objects.link(arm)
    stage.shown = character_meshes(arm)
    if not stage.shown:
        stage.shown, stage.stand_in = [_bone_stand_in(stage)], True
    for obj in stage.shown:
        if obj.name not in scene.collection.objects:
            scene.collection.objects.link(obj)
    cam_data = stage.new(bpy.data.cameras)
    cam_data.type, cam_data.sensor_fit = "ORTHO", "VERTICAL"
    stage.camera = stage.new(bpy.data.objects, cam_data)
    scene.collection.objects.link(stage.camera)
    scene.camera = stage.camera
    follow = stage.camera.constraints.new("COPY_LOCATION")
    follow.target, follow.subtarget = arm, stage.root_bone
    follow.use_z, follow.use_offset = False, True
    with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0]):
        stage.depsgraph = bpy.context.evaluated_depsgraph_get()  # frame_set updates only one that exists


def _bone_stand_in(stage: Stage):
    """A mesh of the armature's bones (Blender's octahedral shape, about one thickness for all), coloured
    by side and skinned rigidly to them: what is shown on a rig without a mesh (an armature itself
    never renders)."""
    arm = stage.armature
    every = list(arm.data.bones)
    heads = np.array([b.head_local for b in every] + [b.tail_local for b in every]).reshape(-1, 3)
    height = float(np.ptp(heads, axis=0).max()) if len(heads) else 1.0
    family = [(b.name, b.parent.name if b.parent else None) for b in every]
    ends = {stage.bone_map.get(j) for j in ("head", "left_wrist", "right_wrist")} - {None}
    top = common_ancestor(family, set(stage.bone_map.values()))
    names = set(shown_bones([(n, p, b.length) for (n, p), b in zip(family, every, strict=True)], ends, height, top))
    bones = [b for b in every if b.name in names] or every
    verts, tris = octahedra([(np.array(b.matrix_local), b.length, min(0.022 * height, 0.3 * b.length))
                             for b in bones])
    mesh = stage.new(bpy.data.meshes)
    mesh.from_pydata(verts.tolist(), [], tris.tolist())
    sides = bone_sides(family, stage.bone_map)
    order = list(SIDE_COLOURS)
    for side in order:
        mat = stage.new(bpy.data.materials)
        mat.diffuse_color = SIDE_COLOURS[side]
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", np.repeat([order.index(sides[b.name]) for b in bones], 8))
    obj = stage.new(bpy.data.objects, mesh)
    obj.parent = arm
    for k, bone in enumerate(bones):
        obj.vertex_groups.new(name=bone.name).add(range(6 * k, 6 * k + 6), 1.0, "REPLACE")
    obj.modifiers.new("armature", "ARMATURE").object = arm
    return obj


def add_floor(stage: Stage, points: Sequence[np.ndarray]) -> None:
    """A round floor under the whole motion at its lowest point: the same from every side, so a
    camera that turns with the body sees the same edge. Checker squares half the character's
    height show where the character goes; a plain ring makes the edge round."""
    allp = np.concatenate(points)
    height = max(float(np.ptp(allp[:, 2])), 1e-3)
    lo, hi = allp[:, :2].min(0), allp[:, :2].max(0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2 + 1.0 * height
    z = float(allp[:, 2].min())
    square = 0.5 * height
    n = int(min(np.ceil(2 * radius / square), 200))
    corner = centre - n * square / 2
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    inside = np.linalg.norm(corner + square * (np.stack([i, j], -1) + 0.5) - centre, axis=-1) < radius - square
    i, j = i[inside], j[inside]
    quads = np.stack([[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]], axis=0).transpose(2, 0, 1)  # (Q, 4, 2)
    verts = np.c_[(corner + square * quads.reshape(-1, 2)), np.full(quads.shape[0] * 4, z + 1e-4 * height)]
    angle = np.linspace(0, 2 * np.pi, 97)[:-1]
    disc = np.c_[centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle), np.full(96, z)]
    mesh = stage.new(bpy.data.meshes)
    faces = np.arange(len(verts)).reshape(-1, 4).tolist() + [list(range(len(verts), len(verts) + 96))]
    mesh.from_pydata(np.concatenate([verts, disc]).tolist(), [], faces)
    for colour in FLOOR_COLOURS:
        mat = stage.new(bpy.data.materials)
        mat.diffuse_color = colour
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", np.r_[(i + j) % 2, 0])
    stage.scene.collection.objects.link(stage.new(bpy.data.objects, mesh))


# ----------------------------------------------------------------------------- the camera


def sample_motion(stage: Stage, frames: Sequence[int]) -> Motion:
    """Evaluate the temporary scene at each frame and read where the character is."""
    points, roots, facings = [], [], []
    for f in frames:
        stage.scene.frame_set(f)
        pts = [_world_vertices(obj.evaluated_get(stage.depsgraph)) for obj in stage.shown]
        points.append(np.concatenate(pts))
        roots.append(bone_head(stage, stage.root_bone))
        hips = [stage.bone_map.get(k, "") for k in ("left_hip", "right_hip")]
        ok = all(h in stage.armature.pose.bones for h in hips)
        facings.append(facing_from_hips(*(bone_head(stage, h) for h in hips)) if ok else FORWARD)
    return Motion(list(frames), points, np.array(roots), np.array(facings))


def _world_vertices(ev) -> np.ndarray:
    mesh = ev.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        ev.to_mesh_clear()
    co = co.reshape(-1, 3)[:: max(1, len(co) // 3 // MAX_POINTS)]
    mw = np.array(ev.matrix_world)
    return co @ mw[:3, :3].T + mw[:3, 3] if len(co) else mw[None, :3, 3]


def bone_head(stage: Stage, bone: str) -> np.ndarray:
    """World position of a pose bone's head in the evaluated temporary scene (the object's origin for '')."""
    ev = stage.armature.evaluated_get(stage.depsgraph)
    mw = np.array(ev.matrix_world)
    return mw[:3, :3] @ np.array(ev.pose.bones[bone].head) + mw[:3, 3] if bone else mw[:3, 3]


def aim(stage: Stage, framing: Framing, facing: np.ndarray) -> None:
    """Point the camera for `framing` of a body facing `facing` (its constraint adds the root's
    horizontal position frame by frame)."""
    from mathutils import Matrix

    look, right, up = view_axes(facing, framing.view)
    offset = framing.centre[0] * right + framing.centre[1] * up - framing.depth * look
    cam = stage.camera
    cam.matrix_world = Matrix.Translation(offset) @ Matrix(np.stack([right, up, -look], axis=1)).to_4x4()
    cam.data.ortho_scale = framing.scale
    cam.data.clip_start, cam.data.clip_end = 0.01 * framing.scale, 2 * framing.depth + 4 * framing.scale

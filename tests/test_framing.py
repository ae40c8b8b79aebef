"""The framing math of previews (rig.framing), without Blender: camera axes, extents and scales,
bone shapes, which bones show and on which side."""
from __future__ import annotations

import math

import numpy as np
import pytest

from momask_blender.rig import framing


def test_views_look_at_the_face_and_the_right_side():
    facing = np.array([0.0, -1.0, 0.0])  # Blender's front
    look, right, up = framing.view_axes(facing, "front", elevation=0)
    assert np.allclose(look, [0, 1, 0]) and np.allclose(right, [1, 0, 0]) and np.allclose(up, [0, 0, 1])
    look, right, up = framing.view_axes(facing, "side", elevation=0)
    assert np.allclose(look, [1, 0, 0])       # from the character's right (-X)...
    assert np.allclose(right, facing)         # ...so it walks to the right of the picture
    look, _, up = framing.view_axes(np.array([3.0, 0.0, 0.0]), "front", elevation=30)
    assert np.isclose(look[2], -math.sin(math.radians(30))) and up[2] > 0 and look[0] < 0
    for v in framing.VIEWS:
        axes = np.stack(framing.view_axes(np.array([0.3, 0.8, 0.0]), v))
        assert np.allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="unknown view"):
        framing.view_axes(facing, "top")


def test_facing_extents_and_scale():
    assert np.allclose(framing.facing_from_hips([0.1, 0, 1], [-0.1, 0, 1]), [0, -1, 0])
    assert np.allclose(framing.facing_from_hips([0, 0.1, 1], [0, -0.1, 1]), [1, 0, 0])
    assert np.allclose(framing.facing_from_hips([0, 0, 1], [0, 0, 1]), [0, -1, 0])  # no direction: -Y
    assert framing.pick_frames(1, 100, 4) == [1, 34, 67, 100]
    assert framing.pick_frames(5, 6, 8) == [5, 6] and framing.pick_frames(3, 2, 4) == []
    # a 2 m tall figure walking 10 m: the camera follows, so only the body's own extent counts
    frames = [np.array([[x, 0, 0], [x + 0.5, 0, 2.0]]) for x in (0.0, 10.0)]
    roots = np.array([[x, 0, 1.0] for x in (0.0, 10.0)])
    right, up = np.array([[1.0, 0, 0]] * 2), np.array([[0, 0, 1.0]] * 2)
    assert framing.extents(frames, roots, right, up) == (0.0, 0.5, 0.0, 2.0)
    scale = framing.ortho_scale((0.0, 0.5, 0.0, 2.0), (100, 200), top_px=20, margin=0.1)
    assert math.isclose(scale, 2.0 * 1.2 / 0.9)
    assert math.isclose(framing.ortho_scale((0, 4, 0, 1), (100, 100), margin=0), 4.0)  # width decides


def test_bone_shapes_sides_and_which_bones_show():
    verts, tris = framing.octahedra([(np.eye(4), 2.0, 0.1), (np.eye(4), 1.0, 0.05)])
    assert verts.shape == (12, 3) and tris.shape == (16, 3) and tris.max() == 11
    assert np.allclose(verts[0], 0) and np.allclose(verts[5], [0, 2, 0]) and np.allclose(verts[1], [0.1, 0.2, 0])
    bones = [("hips", None), ("thigh.L", "hips"), ("shin.L", "thigh.L"), ("toe.L", "shin.L"), ("spine", "hips"),
             ("head", "spine"), ("jaw", "head"), ("thigh.R", "hips"), ("pelvis.L", "hips")]
    bmap = {"pelvis": "hips", "left_hip": "thigh.L", "left_ankle": "toe.L", "head": "head", "right_hip": "thigh.R"}
    sides = framing.bone_sides(bones, bmap)
    assert sides == {"hips": "center", "thigh.L": "left", "shin.L": "left", "toe.L": "left", "spine": "center",
                     "head": "center", "jaw": "center", "thigh.R": "right", "pelvis.L": "center"}
    lengths = [(n, p, 0.04 if n == "pelvis.L" else 0.5) for n, p in bones] + [("lip", "jaw", 0.5)]
    assert framing.shown_bones(lengths, {"head"}, 2.0) == \
        ["hips", "thigh.L", "shin.L", "toe.L", "spine", "head", "thigh.R"]  # not the face, not the tiny pelvis.L
    assert framing.shown_bones([("a", None, 0.05), ("b", "a", 0.5)], set(), 2.0) == ["b"]
    # a root bone on the floor above the body, and a prop beside it, are not the character
    rig = [("root", None), ("hip", "root"), ("pelvis", "hip"), ("thigh", "pelvis"), ("waist", "hip"),
           ("arm", "waist"), ("prop", "root")]
    top = framing.common_ancestor(rig, {"pelvis", "thigh", "arm"})
    assert top == "hip" and framing.common_ancestor(rig, {"thigh"}) == "thigh"
    assert framing.common_ancestor(rig, {"nothing"}) is None
    assert framing.shown_bones([(n, p, 0.5) for n, p in rig], set(), 2.0, top) == \
        ["hip", "pelvis", "thigh", "waist", "arm"]


def test_views_share_one_scale_that_fits_the_whole_motion():
    # a 1.8 m figure 0.5 m wide walking along +X while facing -Y, then turned to face +X
    points = [np.array([[x - 0.25, 0.0, 0.0], [x + 0.25, 0.0, 1.8]]) for x in (0.0, 1.0, 2.0)]
    roots = np.array([[x, 0.0, 1.0] for x in (0.0, 1.0, 2.0)])
    facings = np.array([[0.0, -1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    motion = framing.Motion([1, 2, 3], points, roots, facings)
    size = (200, 100)
    turned = framing.plan_framing(motion, ["front", "side"], size, top_px=10, turn=True)
    assert [f.view for f in turned] == ["front", "side"] and turned[0].scale == turned[1].scale
    scales = []
    for f in turned:  # each view's box, with the camera turning with the body frame by frame
        axes = [framing.view_axes(d, f.view) for d in facings]
        box = framing.extents(points, roots, np.array([a[1] for a in axes]), np.array([a[2] for a in axes]))
        scales.append(framing.ortho_scale(box, size, 10))
        assert math.isclose(f.centre[0], (box[0] + box[1]) / 2) and f.depth > f.scale
        bottom = box[2] - framing.MARGIN * (box[3] - box[2])
        assert math.isclose(f.centre[1], bottom + f.scale / 2)  # the lowest point sits a margin above the edge
    assert turned[0].scale == max(scales)
    kept = framing.plan_framing(motion, ["side"], size, top_px=10, turn=False)[0]  # the first frame's facing
    axes = [framing.view_axes(facings[0], "side")] * 3
    box = framing.extents(points, roots, np.array([a[1] for a in axes]), np.array([a[2] for a in axes]))
    assert kept.scale == framing.ortho_scale(box, size, 10) and motion.at(3) == 2

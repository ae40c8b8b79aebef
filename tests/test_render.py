"""Pictures made by Blender (Workbench): tiny real renders of a rig without a mesh and of a skinned
one, checked pixel by pixel, and the user's scene left as it was (the framing math: test_framing)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from momask_blender.errors import MomaskError  # noqa: E402
from momask_blender.rig.skeleton import JOINTS  # noqa: E402
from momask_blender.scene import render, staging  # noqa: E402
from tests import blender_helpers as bh  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

# ----------------------------------------------------------------------------- real renders


@pytest.fixture
def walker():
    """The plain HumanML3D-skeleton rig (no mesh) walking 2 m toward -Y and moving its left arm up or
    down (about whichever of the bone's own axes does that)."""
    from momask_blender.scene.bone_maps import detection_for
    from momask_blender.scene.characters import build_plain_rig

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_plain_rig()
    bmap = detection_for(obj).bone_map
    hips, arm = obj.pose.bones[bmap["pelvis"]], obj.pose.bones[bmap["left_shoulder"]]
    arm.rotation_mode = "XYZ"
    wrist = obj.pose.bones[bmap["left_wrist"]]
    lift = max(((1.2 if k == 0 else 0.0, 0.0, 1.2 if k == 2 else 0.0) for k in (0, 2)), key=lambda e: (
        setattr(arm, "rotation_euler", e), bpy.context.view_layer.update(), abs(wrist.head.z - hips.head.z))[-1])
    for frame, y, euler in ((1, 0.0, (0.0, 0.0, 0.0)), (24, -2.0, lift)):
        obj.location = (0.0, y, 0.0)
        obj.keyframe_insert("location", frame=frame)
        arm.rotation_euler = euler
        arm.keyframe_insert("rotation_euler", frame=frame)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 24
    scene.frame_set(7)
    return obj, bmap


def fingerprint(obj) -> dict:
    """What a render must not change: every datablock's name, the scene's settings, the pose."""
    scene = bpy.context.scene
    kinds = ("objects", "meshes", "materials", "cameras", "lights", "worlds", "scenes", "images", "actions",
             "collections", "armatures", "node_groups", "texts")
    pose = np.array([np.array(pb.matrix) for pb in obj.pose.bones])
    r = scene.render
    return {"data": {k: sorted(getattr(bpy.data, k).keys()) for k in kinds},
            "scene": (scene.frame_current, scene.camera, scene.world, r.engine, r.resolution_x, r.filepath,
                      r.film_transparent, r.use_stamp, scene.display.shading.color_type, r.fps),
            "users": (sorted(c.name for c in obj.users_collection), [s.name for s in obj.users_scene]),
            "pose": pose.round(6).tolist(), "location": tuple(obj.matrix_world.translation)}


def test_still_of_a_rig_without_a_mesh(walker, tmp_path):
    obj, bmap = walker
    before = fingerprint(obj)
    tile = (150, 200)
    info = render.render_still(bpy.context.scene, obj, tmp_path / "still.png", bone_map=bmap, moments=2,
                               tile=tile, title="a test title", warning="A WARNING")
    img = render.read_image(tmp_path / "still.png")[..., :3]
    assert fingerprint(obj) == before                                  # the user's scene as it was
    assert info["character"] == "bones" and info["frames"] == [1, 24]
    header = info["header_px"]
    assert img.shape == (header + 2 * tile[1] + 3 * render.GAP, 2 * tile[0] + 3 * render.GAP, 3)
    assert list(img.shape[1::-1]) == info["size"]
    assert [(t.view, t.frame) for t in info["tiles"]] == [("side", 1), ("side", 24), ("front", 1), ("front", 24)]
    ink = (img < 0.35).all(-1)
    red = (img[..., 0] > 0.6) & (img[..., 1] < 0.3)
    assert ink[:header].sum() > 50 and red[:header].sum() > 30        # the title and the red warning line
    for t in info["tiles"]:
        x, y, w, h = t.box
        assert ink[y:y + 22, x:x + w // 2].sum() > 20                  # the tile's own label, top left
        rx, ry = (int(round(c)) for c in t.joints_px["root"])
        assert abs(rx - (x + w / 2)) < 0.2 * w                         # the camera follows the pelvis
        head_y = int(t.joints_px["head"][1])
        spine = (img[head_y:ry, rx - 3:rx + 4] < 0.35).all(-1).any(-1)  # the dark trunk bones (the floor is lighter)
        assert ry - head_y > 0.15 * h and spine.mean() > 0.6
    # front view: the character's left (blue bones) on the picture's right, the raised arm high
    front = info["tiles"][3]
    for side, sign in (("left", 1), ("right", -1)):
        (kx, ky), (ax, ay) = front.joints_px[f"{side}_knee"], front.joints_px[f"{side}_ankle"]
        assert sign * (kx - front.joints_px["root"][0]) > 0
        cx, cy = int((kx + ax) / 2), int((ky + ay) / 2)
        shin = img[cy - 2:cy + 3, cx - 2:cx + 3]
        assert (sign * (shin[..., 2] - shin[..., 0])).max() > 0.15, side   # blue on the left, red on the right
    assert abs(front.joints_px["left_wrist"][1] - front.joints_px["right_wrist"][1]) > 10  # the left arm moved

    # a file saved afterwards holds none of the preview's scene, camera, floor or images
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "after.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "after.blend"))
    names = [n for k in ("objects", "meshes", "materials", "cameras", "worlds", "scenes", "images")
             for n in getattr(bpy.data, k).keys()]
    assert not [n for n in names if n.startswith(staging.TAG) or n == "Render Result"]
    assert sorted(bpy.data.scenes.keys()) == before["data"]["scenes"]


def test_bad_preview_requests_are_refused(walker, tmp_path):
    obj, _ = walker
    before = fingerprint(obj)
    with pytest.raises(MomaskError, match="needs an armature"):
        render.render_still(bpy.context.scene, None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown view"):
        render.render_still(bpy.context.scene, obj, tmp_path / "x.png", views=("top",), moments=1, tile=(32, 32))
    assert fingerprint(obj) == before and not list(tmp_path.iterdir())  # nothing left behind


def test_still_of_a_skinned_character(tmp_path):
    from momask_blender.jobs import bake
    from momask_blender.scene.characters import import_rig, pick_armature

    import_rig(shared_path("rigs", "mpfb_game_engine_apose.glb"))
    bh.ensure_registered()
    obj = pick_armature(None)
    bh.activate(obj)
    job, _ = bake.run(bpy.context, obj, prompt="", generation=None,
                      source_path=str(shared_path("motions", "momask_sample_a.bvh")))
    lo, hi = job.frame_start, job.frame_start + job.bakes[0].frames - 1
    info = render.render_still(bpy.context.scene, obj, tmp_path / "mesh.png", bone_map=job.plan.bone_map,
                               moments=1, views=("front",), tile=(120, 160), frame_range=(lo, hi))
    assert info["character"].startswith("mesh: ")
    img = render.read_image(tmp_path / "mesh.png")[..., :3]
    t = info["tiles"][0]
    (hx, hy), (rx, ry) = t.joints_px["head"], t.joints_px["root"]
    assert ry - hy > 0.2 * t.box[3]
    spine = [img[int(round(hy + k * (ry - hy))), int(round(hx + k * (rx - hx)))] for k in np.linspace(0, 1, 25)]
    assert (np.abs(np.array(spine) - render.BACKGROUND).max(-1) > 0.1).all()  # the body itself, no gaps


def test_movie_of_the_whole_motion(walker, tmp_path):
    if not bpy.app.build_options.codec_ffmpeg:
        with pytest.raises(MomaskError, match="without FFmpeg"):
            render.check_movie_support()
        return
    obj, bmap = walker
    before = fingerprint(obj)
    info = render.render_movie(bpy.context.scene, obj, tmp_path / "walk.mp4", bone_map=bmap, size=(63, 64),
                               frame_range=(1, 8))
    assert fingerprint(obj) == before
    assert info["size"] == [64, 64] and info["frames"] == [1, 8]
    movie = bpy.data.images.load(str(tmp_path / "walk.mp4"))
    try:
        assert movie.source == "MOVIE" and tuple(movie.size) == (64, 64) and movie.frame_duration == 8
        px = np.empty(64 * 64 * 4, np.float32)
        movie.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(movie)
    first = px.reshape(64, 64, 4)[..., :3]
    assert np.abs(first - render.BACKGROUND).max(-1).mean() > 0.05   # something drawn on the background
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.mp4"]


def test_a_picture_is_written_whole_and_touches_no_other_file(tmp_path):
    """Written through model_core.inputs.paths: a file beside the target that happens to have the
    name a temporary file once had is the user's, and stays."""
    theirs = tmp_path / "pic.png.part.png"
    theirs.write_bytes(b"the user's file")
    rgb = np.zeros((4, 6, 3))
    rgb[..., 0] = 1.0
    render.write_png(tmp_path / "pic.png", rgb)
    assert theirs.read_bytes() == b"the user's file"
    img = render.read_image(tmp_path / "pic.png")
    assert img.shape == (4, 6, 4) and np.allclose(img[..., :3], rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pic.png", "pic.png.part.png"]


def test_a_movie_aimed_at_a_folder_is_refused_before_rendering(walker, tmp_path):
    if not bpy.app.build_options.codec_ffmpeg:
        pytest.skip("this Blender has no FFmpeg (test_movie_of_the_whole_motion checks its message)")
    obj, bmap = walker
    before = fingerprint(obj)
    (tmp_path / "movies").mkdir()
    with pytest.raises(MomaskError, match="movie .*movies is a folder"):
        render.render_movie(bpy.context.scene, obj, tmp_path / "movies", bone_map=bmap, size=(32, 32),
                            frame_range=(1, 2))
    assert fingerprint(obj) == before and not list((tmp_path / "movies").iterdir())


def test_a_blender_without_ffmpeg_is_told_to_ask_for_a_png(monkeypatch):
    from types import SimpleNamespace

    # no such bpy wheel here: stand in for its build options only
    app = SimpleNamespace(build_options=SimpleNamespace(codec_ffmpeg=False), version_string="4.2.0 (no FFmpeg)")
    monkeypatch.setattr(render, "bpy", SimpleNamespace(app=app))
    with pytest.raises(MomaskError, match=r"4.2.0 \(no FFmpeg\)\) was built without FFmpeg.*\.png preview"):
        render.check_movie_support()


def test_joint_names_reported_are_the_maps(walker, tmp_path):
    obj, bmap = walker
    info = render.render_still(bpy.context.scene, obj, tmp_path / "a.png", bone_map=bmap, frames=[5],
                               views=("side",), tile=(48, 64))
    assert set(info["tiles"][0].joints_px) == {"root", *bmap} and set(bmap) <= set(JOINTS)
    assert info["frames"] == [5] and Path(info["path"]).is_file()

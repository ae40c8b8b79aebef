"""Directing inside Blender (bpy as a module) on a shared rig: keyed poses, a path curve, waypoint
and reach empties for Generate and for range regeneration, bad input that changes nothing, and
the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from momask_blender.scene import directing as scene_directing  # noqa: E402
from momask_blender.scene.animation import channelbag  # noqa: E402
from tests import blender_helpers as bh  # noqa: E402
from tests.conftest import ROOT, shared_path  # noqa: E402

RIG = "mpfb_game_engine_apose.glb"
STEPS = 2
CM = 0.01


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """A .blend: the rig at 24 fps with a real motion keyed on every frame (the animator's
    blocking), a Bézier path, and a collection of target empties (a waypoint, a reach)."""
    from momask_blender.jobs import bake

    obj = bh.load_rig(shared_path("rigs", RIG))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_set(1)
    data = bake.prepare(bpy.context, obj, prompt="", generation=None, foot_lock=False,
                       source_path=str(shared_path("motions", "momask_sample_a.bvh")))
    bake.apply(bpy.context, bake.compute(data))
    # targets near where the blocking goes, so they ask for plausible speeds
    at = {f: heads(obj, f) for f in (1, 20, 40, 50, 80)}
    curve = bpy.data.curves.new("Route", "CURVE")
    curve.dimensions = "3D"
    spline = curve.splines.new("BEZIER")
    spline.bezier_points.add(2)
    bend = np.array([0.3, 0.3, 0.0])
    for point, co in zip(spline.bezier_points, [at[1]["pelvis"], at[20]["pelvis"] + bend, at[40]["pelvis"]],
                         strict=True):
        point.co, point.handle_left_type, point.handle_right_type = co * [1, 1, 0], "AUTO", "AUTO"
    scene.collection.objects.link(bpy.data.objects.new("Route", curve))
    targets = bpy.data.collections.new("Targets")
    scene.collection.children.link(targets)
    for name, where, frame, joint in (("Stop", at[50]["pelvis"] * [1, 1, 0] + [0.1, -0.1, 0], 50, "pelvis"),
                                      ("Touch", at[80]["left_wrist"] + [0.1, 0.1, 0.05], 80, "LEFT_HAND")):
        empty = bpy.data.objects.new(name, None)
        empty.location, empty["momask_frame"], empty["momask_joint"] = where, frame, joint
        targets.objects.link(empty)
    bh.activate(obj)
    scene.frame_set(1)
    path = tmp_path_factory.mktemp("direct") / "blocked.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    return path


def open_blocked(path):
    bpy.ops.wm.open_mainfile(filepath=str(path))
    bh.ensure_registered()
    obj = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    bh.activate(obj)
    bpy.context.scene.frame_set(1)
    return obj


def select_keys(obj, frames) -> None:
    _, fcurves = channelbag(obj)
    for fc in fcurves:
        for key in fc.keyframe_points:
            key.select_control_point = int(round(key.co[0])) in frames


def heads(obj, frame) -> dict[str, np.ndarray]:
    bpy.context.scene.frame_set(frame)
    bone_map = json.loads(obj["momask_bone_map"])
    return {j: np.array(obj.matrix_world @ obj.pose.bones[b].head) for j, b in bone_map.items()}


def distance_to_line(point, line) -> float:
    a, b = line[:-1, :2], line[1:, :2]
    t = np.clip(((point[:2] - a) * (b - a)).sum(1) / ((b - a) ** 2).sum(1), 0, 1)
    return float(np.linalg.norm(a + t[:, None] * (b - a) - point[:2], axis=1).min())


def test_generate_meets_keys_path_waypoint_and_reach(blocked, model_paths):
    obj = open_blocked(blocked)
    select_keys(obj, {70})
    keyed = {70: heads(obj, 70)}
    old = obj.animation_data.action.name
    bpy.context.scene.frame_set(1)
    done = bpy.ops.momask.generate(prompt="a person walks", seconds=4.0, steps=STEPS, variations=2, foot_lock=False,
                                   use_keys="SELECTED", path="Route", path_start=1, path_end=40, targets="Targets",
                                   **model_paths)
    assert done == {"FINISHED"}
    new = obj.animation_data.action
    assert new.name != old and old in bpy.data.actions and new.frame_range[0] == 1
    line = scene_directing.curve_points(bpy.context, bpy.data.objects["Route"])
    for frame in range(1, 41, 3):
        assert distance_to_line(heads(obj, frame)["pelvis"], line) < 3 * CM, frame
    assert np.linalg.norm(heads(obj, 40)["pelvis"][:2] - line[-1, :2]) < 5 * CM
    # 24 fps: frame 50 lies between two model frames, so it is met to within a fraction of a step
    stop, touch = (np.array(bpy.data.objects[name].location) for name in ("Stop", "Touch"))
    assert np.linalg.norm(heads(obj, 50)["pelvis"][:2] - stop[:2]) < 5 * CM
    assert np.linalg.norm(heads(obj, 80)["left_wrist"] - touch) < 1 * CM
    for frame, want in keyed.items():
        got = heads(obj, frame)
        assert np.mean([np.linalg.norm(got[j] - want[j]) for j in want]) < 4 * CM, frame
    # the second variation meets them too
    from momask_blender.ui import operators

    assert len(operators.last_actions) == 2
    second = operators.last_actions[1]
    obj.animation_data.action = second
    if hasattr(obj.animation_data, "action_slot"):  # 4.4+: slotted actions
        obj.animation_data.action_slot = second.slots[0]
    assert np.linalg.norm(heads(obj, 80)["left_wrist"] - touch) < 1 * CM


def test_range_regeneration_meets_a_key_and_a_waypoint_and_keeps_the_rest(blocked, model_paths):
    obj = open_blocked(blocked)
    select_keys(obj, {60})
    want = heads(obj, 60)
    outside = {f: heads(obj, f) for f in (10, 100)}
    stop = bpy.data.objects["Stop"]
    stop["momask_frame"] = 48
    stop.location = heads(obj, 48)["pelvis"] * [1, 1, 0] + [0.05, 0.1, 0]
    bpy.data.objects.remove(bpy.data.objects["Touch"])
    done = bpy.ops.momask.inpaint(prompt="a person jumps", frame_start=36, frame_end=84, steps=STEPS,
                                  use_keys="SELECTED", targets="Targets", **model_paths)
    assert done == {"FINISHED"}
    got = heads(obj, 60)
    assert np.mean([np.linalg.norm(got[j] - want[j]) for j in want]) < 4 * CM
    assert np.linalg.norm(heads(obj, 48)["pelvis"][:2] - np.array(stop.location)[:2]) < 5 * CM
    for frame, before in outside.items():
        after = heads(obj, frame)
        assert max(np.linalg.norm(after[j] - before[j]) for j in before) < 1e-6


def scene_state(obj):
    acts = sorted((a.name, a.users, a.use_fake_user) for a in bpy.data.actions)
    objs = sorted((o.name, o.type) for o in bpy.data.objects)
    _, fcurves = channelbag(obj)
    keys = [(fc.data_path, fc.array_index, len(fc.keyframe_points)) for fc in fcurves]
    return acts, objs, len(bpy.data.curves), obj.animation_data.action.name, keys, bpy.context.scene.frame_end


def _mesh_path():
    bpy.data.objects.new("Floor", bpy.data.meshes.new("Floor"))
    return {"path": "Floor"}


def _point_path():
    curve = bpy.data.curves.new("Dot", "CURVE")
    spline = curve.splines.new("POLY")
    spline.points.add(2)
    for p in spline.points:
        p.co = (1.0, 1.0, 0.0, 1.0)
    bpy.context.scene.collection.objects.link(bpy.data.objects.new("Dot", curve))
    return {"path": "Dot"}


def _unmapped_key():
    obj = bpy.context.view_layer.objects.active
    mapped = set(json.loads(obj["momask_bone_map"]).values())
    bone = next(b for b in obj.pose.bones if b.name not in mapped and b.parent is not None and b.name != "Root")
    bone.keyframe_insert("rotation_quaternion", frame=30)
    return {"use_keys": "ALL", "_bone": bone.name}


def _late_waypoint():
    bpy.data.objects["Stop"]["momask_frame"] = 500
    return {"targets": "Targets"}


def _two_places():
    bpy.data.objects["Touch"]["momask_joint"] = "pelvis"
    bpy.data.objects["Touch"]["momask_frame"] = 50
    return {"targets": "Targets"}


def _file(text: str):
    def make(tmp_path):
        path = tmp_path / "c.json"
        path.write_text(text)
        return {"constraints_file": str(path)}
    return make


BAD = {
    "not_a_curve": (_mesh_path, "is a mesh, not a curve"),
    "zero_length": (_point_path, "has no length"),
    "unmapped_key": (_unmapped_key, "the bone map does not use"),
    "outside": (_late_waypoint, "falls outside the generated motion"),
    "two_places": (_two_places, "two different places at the same moment"),
    "xz_three": (_file('{"constraints": [{"frame": 3, "joint": "pelvis", "position": [1, 2, 3], "axes": "xz"}]}'),
                 "axes 'xz' takes 2 numbers"),
    "nan": (_file('{"constraints": [{"frame": 3, "joint": "head", "position": [1, NaN, 3]}]}'), "NaN"),
    "unknown_joint": (_file('{"constraints": [{"frame": 3, "joint": "tail", "position": [1, 1, 3]}]}'),
                      "unknown joint 'tail'"),
    "no_such_path": (lambda: {"path": "Nowhere"}, "no object 'Nowhere'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_direction_is_a_message_and_changes_nothing(case, blocked, model_paths, tmp_path):
    obj = open_blocked(blocked)
    make, message = BAD[case]
    kw = make(tmp_path) if case in ("xz_three", "nan", "unknown_joint") else make()
    bone = kw.pop("_bone", None)
    before = scene_state(obj)
    with pytest.raises(RuntimeError) as err:
        bpy.ops.momask.generate(prompt="a person walks", seconds=4.0, steps=STEPS, **kw, **model_paths)
    assert message in str(err.value), str(err.value)
    if bone:
        assert bone in str(err.value)
    assert scene_state(obj) == before


@pytest.mark.parametrize("kind", ["NURBS", "POLY"])
def test_curves_are_read_as_blender_evaluates_them(kind, blocked):
    open_blocked(blocked)
    curve = bpy.data.curves.new("C", "CURVE")
    curve.dimensions = "3D"
    spline = curve.splines.new(kind)
    spline.points.add(3)
    for i, p in enumerate(spline.points):
        p.co = (float(i), 0.5 * i * i, 0.0, 1.0)
    spline.use_endpoint_u = True
    obj = bpy.data.objects.new("C", curve)
    obj.location = (0.0, 0.0, 1.0)
    bpy.context.scene.collection.objects.link(obj)
    plain = scene_directing.curve_points(bpy.context, obj)
    assert np.allclose(plain[0], (0, 0, 1)) and np.allclose(plain[-1], (3, 4.5, 1))
    assert np.all(np.diff(plain[:, 0]) > 0)  # in order along the curve
    counts = len(bpy.data.objects), len(bpy.data.curves)
    curve.bevel_depth = 0.05  # a tube: its centre line is the path, through a copy removed again
    np.testing.assert_allclose(scene_directing.curve_points(bpy.context, obj), plain, atol=1e-6)
    assert (len(bpy.data.objects), len(bpy.data.curves)) == counts
    spline.use_cyclic_u = True
    loop = scene_directing.curve_points(bpy.context, obj)
    assert np.allclose(loop[0], loop[-1])


def test_command_line_directs_a_blend(blocked, model_paths, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out.blend"
    base = [sys.executable, "-m", "momask_blender.bake", "--blend", str(blocked), "--prompt", "a person walks",
            "--seconds", "3", "--steps", str(STEPS), "--checkpoints", model_paths["checkpoints"],
            "--clip", model_paths["clip"], "--frame-start", "1", "--out", str(out)]
    good = subprocess.run(base + ["--path", "Route", "--use-keys", "all"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert good.returncode == 0, good.stderr[-2000:]
    info = json.loads(good.stdout.strip().splitlines()[-1])
    assert info["constraints"] > 60 and out.exists()
    out.unlink()
    bad = subprocess.run(base + ["--path", "Stop"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode != 0 and "is an empty, not a curve" in bad.stderr and not out.exists()
    assert "Traceback" not in bad.stderr, bad.stderr[-2000:]


def test_sidebar_section_adds_targets_and_generate_reads_it(blocked, model_paths):
    """The Direct section: Add Target makes an empty at the cursor for the current frame (one undo
    step), the panel draws, and Generate invoked from the sidebar takes the section's choices."""
    from momask_blender.ui import direct_panel, operators
    from tests.test_inpaint_blender import _Layout

    obj = open_blocked(blocked)
    scene = bpy.context.scene
    props = scene.momask_direct
    assert not props.enabled and direct_panel.scene_direction(bpy.context) is None
    scene.cursor.location = (0.3, -0.4, 1.2)
    scene.frame_set(40)
    assert bpy.ops.momask.add_target(kind="RIGHT_HAND") == {"FINISHED"}
    assert "UNDO" in bpy.types.MOMASK_OT_add_target.bl_options
    empty = props.targets.objects[0]
    assert props.enabled and props.targets.name == direct_panel.TARGETS_COLLECTION
    assert (empty["momask_frame"], empty["momask_joint"]) == (40, "RIGHT_HAND")
    assert np.allclose(empty.location, (0.3, -0.4, 1.2))
    props.path = bpy.data.objects["Route"]
    log = []
    direct_panel.MOMASK_PT_direct.draw(type("P", (), {"layout": _Layout(log)})(), bpy.context)
    assert "momask.add_target" in log and empty.name in log
    direction = direct_panel.scene_direction(bpy.context)
    assert (direction.path, direction.targets, direction.use_keys) == ("Route", props.targets.name, "NONE")
    # invoke, as the sidebar's button calls it: the operator fills its direction from the scene
    op = operators.MOMASK_OT_generate
    copy = type("MOMASK_TEST_OT_direct", op.__bases__, {
        **{k: v for k, v in op.__dict__.items() if k not in ("bl_rna", "__dict__", "__weakref__")},
        "bl_idname": "momask_test.direct",
        "execute": lambda self, context: (op.execute(self, context) if getattr(self, "_entered", False)
                                          else (setattr(self, "_entered", True), self.invoke(context, None))[1])})
    bpy.utils.register_class(copy)
    try:
        scene.frame_set(1)
        scene.momask.steps, scene.momask.seconds = STEPS, 3.0
        assert bpy.ops.momask_test.direct(**model_paths) == {"FINISHED"}
    finally:
        bpy.utils.unregister_class(copy)
    assert operators.last_job.constraints and any(c.joint == "right_wrist" for c in operators.last_job.constraints
                                                  if hasattr(c, "joint"))
    hand = heads(obj, 40)["right_wrist"]
    assert np.linalg.norm(hand - np.array([0.3, -0.4, 1.2])) < 1 * CM

"""Blender without PyTorch: the add-on's operators through a model server.

A Blender process (bpy as a module) where `import torch` fails is told to install PyTorch or pick
a server when the model is set to run in Blender, then starts the add-on's local server
(the venv's Python, the reference model, loopback), generates onto a real rig and regenerates a
range through it, extends the animation through the same server named as a remote one (URL and
token in the preferences; a saved .blend does not hold the token), is refused with a wrong token
without a change to the scene, and stops the server when the add-on is disabled.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, shared_path

pytest.importorskip("bpy")

SCRIPT = r'''
import json, sys
from pathlib import Path

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("PyTorch is not installed in this Blender")

sys.meta_path.insert(0, NoTorch())
import bpy  # noqa: I001 (Blender first: it provides addon_utils)
import addon_utils
import numpy as np

from momask_blender.scene.animation import channelbag
from momask_blender.setup import local_server
from momask_blender.ui import preferences, timeline_ops
from tests import blender_helpers as bh

rig_path, checkpoints, clip, python = sys.argv[1:5]
obj = bh.load_rig(Path(rig_path))
addon_utils.enable("momask_blender", default_set=True)
prefs = preferences.get(bpy.context)
prefs.checkpoints, prefs.clip, prefs.server_python = checkpoints, clip, python
out = {}

prefs.model_location = "BLENDER"  # the model in this Python, which has no PyTorch: a message, no change
bh.activate(obj)
actions = len(bpy.data.actions)
try:
    out["in_blender"] = sorted(bpy.ops.momask.generate(prompt="a person walks", seconds=2.0, steps=3))
except RuntimeError as err:
    out["in_blender"] = str(err)
out["in_blender_unchanged"] = len(bpy.data.actions) == actions and obj.animation_data is None
prefs.model_location = "LOCAL_SERVER"


def keys(obj):
    _, fcurves = channelbag(obj)
    data = {}
    for fc in fcurves:
        co = np.empty(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        data[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return data


bh.activate(obj)
out["generate"] = sorted(bpy.ops.momask.generate(prompt="a person walks forward", seconds=3.0, steps=3, seed=2))
out["action"] = obj.animation_data.action.name
server = local_server.current()
out["server_running"] = server is not None and server.process.poll() is None

before = keys(obj)
out["inpaint"] = sorted(bpy.ops.momask.inpaint(frame_start=20, frame_end=40, prompt="a person jumps", steps=3))
lo, hi = timeline_ops.last_result["frames"]
after = keys(obj)
changed_inside, changed_outside = 0, 0
for path, old in before.items():
    new = after[path]
    outside_old = old[(old[:, 0] < lo) | (old[:, 0] > hi)]
    outside_new = new[(new[:, 0] < lo) | (new[:, 0] > hi)]
    changed_outside += int(not np.array_equal(outside_old, outside_new))
    inside_old, inside_new = old[(old[:, 0] >= lo) & (old[:, 0] <= hi)], new[(new[:, 0] >= lo) & (new[:, 0] <= hi)]
    changed_inside += int(inside_old.shape != inside_new.shape or not np.allclose(inside_old, inside_new))
out["changed_inside"], out["changed_outside"], out["curves"] = changed_inside, changed_outside, len(before)

prefs.model_location, prefs.server_url, prefs.server_token = "SERVER", server.url, server.token
end_before = max(fc.range()[1] for fc in channelbag(obj)[1])
out["extend"] = sorted(bpy.ops.momask.extend(seconds=1.0, side="AFTER", prompt="a person waves", steps=3))
out["extended_by"] = max(fc.range()[1] for fc in channelbag(obj)[1]) - end_before
saved = Path(sys.argv[5])
bpy.ops.wm.save_as_mainfile(filepath=str(saved), copy=True, compress=False)
out["token_in_blend"] = server.token.encode() in saved.read_bytes()

prefs.server_token = "wrong"
actions = len(bpy.data.actions)
snapshot = keys(obj)
try:
    out["wrong_token"] = sorted(bpy.ops.momask.generate(prompt="a person sits", seconds=2.0, steps=3))
except RuntimeError as err:
    out["wrong_token"] = str(err)
out["unchanged_after_refusal"] = len(bpy.data.actions) == actions and all(
    np.array_equal(v, keys(obj)[k]) for k, v in snapshot.items())

out["torch_imported"] = "torch" in sys.modules
addon_utils.disable("momask_blender")
out["server_stopped"] = server.process.poll() is not None and local_server.current() is None
print("RESULT " + json.dumps(out))
from momask_blender.scene.teardown import leave_if_teardown_crashes

leave_if_teardown_crashes(0)  # the bpy 4.2 module crashes in its own teardown
'''


def test_operators_run_through_a_server_in_a_blender_without_pytorch(reference_dir, tmp_path):
    rig = shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx")
    env = dict(os.environ, PYTHONPATH=str(ROOT), BLENDER_USER_RESOURCES=str(tmp_path / "blender"))
    env.pop("MOMASK_SERVER_TOKEN", None)
    arguments = [str(rig), str(reference_dir / "checkpoints"), str(reference_dir / "clip" / "ViT-B-32.pt"),
                 sys.executable, str(tmp_path / "scene.blend")]
    done = subprocess.run([sys.executable, "-c", SCRIPT, *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["generate"] == ["FINISHED"] and out["action"] and out["server_running"], out
    assert out["inpaint"] == ["FINISHED"] and out["changed_inside"] > out["curves"] // 2, out
    assert out["changed_outside"] == 0, out
    assert out["extend"] == ["FINISHED"] and out["extended_by"] > 10, out
    assert not out["token_in_blend"], out  # the token lives in the preferences, never in the scene
    assert "token" in out["wrong_token"] and out["unchanged_after_refusal"], out
    assert not out["torch_imported"] and out["server_stopped"], out
    # with the model set to run in Blender, the missing PyTorch is named with where to install it
    assert "not installed" in out["in_blender"] and "Install PyTorch" in out["in_blender"], out
    assert "internal error" not in out["in_blender"] and out["in_blender_unchanged"], out


class Layout:
    """Records what a draw function puts on the screen (headless Blender draws nothing)."""

    def __init__(self, shown: list):
        self.shown, self.alert = shown, False

    def box(self, **_kw):
        return self

    row = column = box

    def prop(self, data, name, **_kw):
        self.shown.append(("prop", name))

    def operator(self, name, **_kw):
        self.shown.append(("operator", name))

    def label(self, text="", **_kw):
        self.shown.append(("label", text))


def test_the_preferences_show_what_each_place_needs():
    import addon_utils
    import bpy

    from momask_blender.ui import preferences

    addon_utils.enable("momask_blender", default_set=True)
    prefs = preferences.get(bpy.context)
    shown = {}
    for place in ("BLENDER", "LOCAL_SERVER", "SERVER"):
        prefs.model_location = place
        shown[place] = []
        preferences._draw_model_place(prefs, Layout(shown[place]))
    prefs.model_location = "BLENDER"
    assert ("prop", "server_url") not in shown["BLENDER"] and ("prop", "server_token") in shown["SERVER"]
    assert ("operator", "momask.test_server") in shown["SERVER"]
    assert ("operator", "momask.start_local_server") in shown["LOCAL_SERVER"]
    assert ("label", "Local server: stopped") in shown["LOCAL_SERVER"]


BAKE_WITHOUT_TORCH = r'''
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("PyTorch is not installed here")

sys.meta_path.insert(0, NoTorch())
from momask_blender import bake
from momask_blender.scene.teardown import exit_process

code = bake.main(sys.argv[1:])  # what `python -m momask_blender.bake` runs, then its way out
print("EXIT", code, "TORCH", "torch" in sys.modules, flush=True)
exit_process(code)
'''


def test_the_bake_command_line_runs_through_a_server_without_pytorch(reference_dir, tmp_path):
    from tests import serve_helpers

    rig = shared_path("rigs", "mpfb_game_engine_apose.glb")
    server = serve_helpers.start_server(reference_dir)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), MOMASK_SERVER_TOKEN=serve_helpers.TOKEN)
        out = tmp_path / "served.blend"
        bake = [sys.executable, "-c", BAKE_WITHOUT_TORCH, "--rig", str(rig), "--server", server.url]
        run = dict(cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        done = subprocess.run(bake + ["--prompt", "a person waves", "--seconds", "2", "--steps", "3", "--fps", "30",
                                      "--out", str(out)], **run)
        refused = subprocess.run(bake + ["--prompt", "a person", "--token", "wrong", "--out",
                                         str(tmp_path / "no.blend")], **run)
    finally:
        serve_helpers.stop_server(server)
    assert "EXIT 0 TORCH False" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    info = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    from momask_blender.rig.resample import frame_count

    frames = info["frame_end"] - info["frame_start"] + 1
    assert frames == frame_count(40, 20.0, 30.0) and info["joints_mapped"] == 22, info  # 2 s of the model's 20 fps
    assert out.is_file()
    assert "EXIT 1 TORCH False" in refused.stdout and "token" in refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr and not (tmp_path / "no.blend").exists()

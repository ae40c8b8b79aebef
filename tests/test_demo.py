"""The demo (`make demo`): where the weights are found, the random-weights fallback, and end-to-end
runs on Blender as a module that write a Workbench picture (tiny tiles, to keep the suite quick)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from momask_blender.demo import RANDOM_TAG, make_random_weights
from momask_blender.errors import MomaskError
from momask_blender.setup.weights import checkpoints_ok, find_weights
from tests.conftest import shared_path

# ----------------------------------------------------------------------------- weight discovery


def _ckpt(root: Path) -> Path:
    """The folders of an official download as the loader's search sees them (opt.txt files only)."""
    for name, vq in (("rvq_x", None), ("t2m_x", "rvq_x"), ("tres_x", "rvq_x")):
        (root / "t2m" / name).mkdir(parents=True)
        (root / "t2m" / name / "opt.txt").write_text(f"name: {name}\n" + (f"vq_name: {vq}\n" if vq else ""))
    return root


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def world(tmp_path):
    """A checkout at tmp/repo with, beside it, the official download, ../shared/reference, and
    another download somewhere else."""
    checkout = tmp_path / "repo"
    checkout.mkdir()
    beside = _ckpt(tmp_path / "checkpoints")
    beside_clip = _file(tmp_path / "ViT-B-32.pt")
    ref = tmp_path / "shared" / "reference"
    _ckpt(ref / "checkpoints")
    _file(ref / "clip" / "ViT-B-32.pt")
    other = _ckpt(tmp_path / "elsewhere" / "checkpoints")
    other_clip = _file(tmp_path / "clips" / "ViT-B-32.pt")
    prefs = _ckpt(tmp_path / "prefs" / "checkpoints")
    prefs_clip = _file(tmp_path / "prefs" / "clip" / "ViT-B-32.pt")
    return dict(tmp=tmp_path, checkout=checkout, beside=beside, beside_clip=beside_clip, ref=ref, other=other,
                other_clip=other_clip, prefs=prefs, prefs_clip=prefs_clip)


def test_weights_are_found_in_the_documented_order(world):
    w = world
    env = {"MOMASK_CHECKPOINTS": str(w["other"]), "MOMASK_CLIP": str(w["other_clip"])}
    prefs = [(str(w["prefs"]), str(w["prefs_clip"]))]
    got = find_weights(env, w["checkout"], prefs)
    assert (got.origin, got.checkpoints, got.clip) == ("preferences", w["prefs"], w["prefs_clip"])
    # incomplete preferences are skipped with a note
    got = find_weights(env, w["checkout"], [(str(w["prefs"]), ""), ("", "")])
    assert (got.origin, got.checkpoints, got.clip) == ("MOMASK_CHECKPOINTS", w["other"], w["other_clip"])
    assert got.notes and "not complete" in got.notes[0]
    got = find_weights({}, w["checkout"])
    assert (got.origin, got.checkpoints, got.clip) == ("beside the checkout", w["beside"], w["beside_clip"])
    assert got.meaningful
    w["beside_clip"].unlink()
    got = find_weights({}, w["checkout"])
    assert got.origin == "reference" and got.checkpoints == w["ref"] / "checkpoints" and not got.meaningful
    assert any("no ViT-B-32.pt" in n for n in got.notes)
    # MOMASK_CLIP also completes the download beside the checkout
    got = find_weights({"MOMASK_CLIP": str(w["other_clip"])}, w["checkout"])
    assert (got.origin, got.clip) == ("beside the checkout", w["other_clip"])
    import shutil

    shutil.rmtree(w["ref"])
    assert find_weights({}, w["checkout"]) is None


def test_clip_is_looked_for_beside_the_checkpoints_and_in_the_home_cache(world):
    w = world
    env = {"MOMASK_CHECKPOINTS": str(w["other"] / "t2m")}  # the dataset folder itself is accepted
    with pytest.raises(MomaskError, match="MOMASK_CLIP"):
        find_weights(env, w["checkout"])
    home = w["tmp"] / "home"
    cached = _file(home / ".cache" / "clip" / "ViT-B-32.pt")
    assert find_weights(env, w["checkout"], home=home).clip == cached
    beside = _file(w["other"].parent / "ViT-B-32.pt")
    assert find_weights(env, w["checkout"], home=home).clip == beside


def test_wrong_environment_variables_are_errors_not_fallbacks(world):
    w = world
    with pytest.raises(MomaskError, match="MOMASK_CHECKPOINTS"):
        find_weights({"MOMASK_CHECKPOINTS": str(w["tmp"] / "nope")}, w["checkout"])
    with pytest.raises(MomaskError, match="MOMASK_CHECKPOINTS"):
        find_weights({"MOMASK_CHECKPOINTS": str(w["tmp"])}, w["checkout"])  # no t2m/ inside
    with pytest.raises(MomaskError, match="MOMASK_CLIP"):
        find_weights({"MOMASK_CLIP": str(w["tmp"] / "missing.pt")}, w["checkout"])
    assert checkpoints_ok(w["beside"]) and checkpoints_ok(w["beside"] / "t2m") and not checkpoints_ok(w["tmp"])


# ----------------------------------------------------------------------------- random weights


def test_random_weights_are_a_loadable_model_in_the_official_layout(tmp_path):
    from model_core import GenerationSettings, MoMask
    from momask_blender.setup.assets import discover_release

    w = make_random_weights(tmp_path / "cache")
    assert w.random and w.origin == "random" and not w.meaningful
    release = discover_release(w.checkpoints / "t2m")
    assert release is not None and release.rvq.startswith("rvq_nq6")
    for folder in (release.rvq, release.transformer, release.residual):
        assert (w.checkpoints / "t2m" / folder / "opt.txt").read_text().startswith("------------ Options")
    assert "RANDOM" in (tmp_path / "cache" / "README_RANDOM_WEIGHTS.txt").read_text()
    stamp = (tmp_path / "cache" / ".complete").stat().st_mtime_ns
    assert make_random_weights(tmp_path / "cache").checkpoints == w.checkpoints  # made once
    assert (tmp_path / "cache" / ".complete").stat().st_mtime_ns == stamp
    model = MoMask.load(w.checkpoints, w.clip)
    motion = model.generate("a person walks forward and waves", seconds=2.0, seed=1,
                            settings=GenerationSettings(steps=2))
    joints = motion.joints[0]
    assert joints.shape == (40, 22, 3) and np.isfinite(joints).all()
    # the mean is a person standing: head above the pelvis above the feet, about human height
    assert joints[:, 15, 1].mean() > joints[:, 0, 1].mean() > joints[:, 10, 1].mean()
    assert 1.3 < np.ptp(joints[0, :, 1]) < 2.0


def test_an_install_without_the_test_helpers_says_how_to_get_weights(tmp_path, monkeypatch):
    """The extension's wheel has no model_core.testing: no random weights there, a message instead."""
    import sys

    monkeypatch.setitem(sys.modules, "model_core.testing.random_weights", None)  # as if absent
    with pytest.raises(MomaskError, match=r"cannot make the demo's random ones(.|\n)*MOMASK_CHECKPOINTS"):
        make_random_weights(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_note_beside_random_weights_never_follows_a_link(tmp_path):
    """The note is written through model_core.inputs.paths: a dangling link in its place is refused,
    not followed to write a file somewhere else."""
    cache = tmp_path / "cache"
    make_random_weights(cache)
    (cache / "README_RANDOM_WEIGHTS.txt").unlink()
    (cache / "README_RANDOM_WEIGHTS.txt").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(MomaskError, match="note beside the random weights .* is a symbolic link"):
        make_random_weights(cache)
    assert not (tmp_path / "elsewhere.txt").exists()


# ----------------------------------------------------------------------------- end to end (Blender)


def _run_demo(argv, capsys) -> dict:
    pytest.importorskip("bpy")
    from momask_blender import demo

    assert demo.main(argv) == 0
    out = capsys.readouterr()
    return json.loads(out.out[out.out.index("{"):]), out.err


def _picture(info) -> np.ndarray:
    from momask_blender.scene.render import read_image

    img = read_image(Path(info["files"]["png"]))[..., :3]
    assert list(img.shape[1::-1]) == info["picture"]["size"]
    return img


TILE = ["--tile", "80", "100"]


def test_demo_end_to_end_with_the_reference_weights(tmp_path, capsys, monkeypatch):
    ref = shared_path("reference")
    monkeypatch.delenv("MOMASK_CHECKPOINTS", raising=False)
    monkeypatch.delenv("MOMASK_CLIP", raising=False)
    info, err = _run_demo(["--checkpoints", str(ref / "checkpoints"), "--clip", str(ref / "clip" / "ViT-B-32.pt"),
                           "--steps", "2", "--seconds", "2", "--frames", "3", *TILE,
                           "--out", str(tmp_path / "out")], capsys)
    files = {k: Path(v) for k, v in info["files"].items()}
    assert files == {"blend": tmp_path / "out.blend", "bvh": tmp_path / "out.bvh", "png": tmp_path / "out.png"}
    assert all(p.is_file() for p in files.values())
    assert files["bvh"].read_text().startswith("HIERARCHY")
    from momask_blender.scene.render import BACKGROUND, GAP

    img = _picture(info)
    lo, hi = info["frame_range"]
    assert img.shape[1] == 3 * 80 + 4 * GAP and info["picture"]["frames"] == [lo, round((lo + hi) / 2), hi]
    tiles = img[info["picture"]["header_px"]:]
    assert (np.abs(tiles - BACKGROUND).max(-1) > 0.1).mean() > 0.1  # the character and its floor are drawn
    assert info["weights"]["origin"] == "--checkpoints" and abs(info["frames"] - 60) <= 1 and info["fps"] == 30
    assert info["joints_mapped"] >= 16 and info["seconds"]["total_s"] > 0
    assert info["seconds"]["picture_first_tile_s"] > 0 and info["picture"]["character"] == "bones"
    assert "RANDOM" not in err

    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(files["blend"]))
    arm = bpy.data.objects[info["armature"]]
    assert arm.animation_data.action.name == info["action"]
    assert not [n for n in bpy.data.objects.keys() + bpy.data.scenes.keys() if n.startswith("momask_preview")]


def test_demo_with_random_weights_says_so_loudly(tmp_path, capsys, monkeypatch):
    from momask_blender import demo

    monkeypatch.setattr(demo, "RANDOM_CACHE", tmp_path / "cache")
    info, err = _run_demo(["--random-weights", "--steps", "2", "--seconds", "1", "--frames", "2", *TILE,
                           "--out", str(tmp_path / "out")], capsys)
    for path in info["files"].values():
        assert Path(path).name.startswith(f"out_{RANDOM_TAG}.") and Path(path).is_file()
    assert err.count("MEANINGLESS") >= 2 and "download_models.sh" in err and "MOMASK_CHECKPOINTS" in err
    assert info["weights"]["random"] is True and info["weights"]["meaningful"] is False
    top = _picture(info)[: info["picture"]["header_px"]]
    red = (top[..., 0] > 0.6) & (top[..., 1] < 0.35)
    assert red.sum() > 50  # the red warning line on the picture itself


def test_demo_bakes_a_motion_file(tmp_path, capsys):
    motion = shared_path("motions", "humanml3d_000612.npy")
    info, _ = _run_demo(["--source", str(motion), "--frames", "2", *TILE, "--out", str(tmp_path / "src")], capsys)
    assert info["weights"] is None and info["frames"] > 200 and Path(info["files"]["png"]).is_file()


def test_the_demo_command_exits_zero_on_every_supported_blender(tmp_path):
    """`python -m momask_blender.demo` as a user runs it: its exit status is its work's, also on the
    bpy 4.2 module, whose own teardown crashes once the add-on was registered (scene.teardown)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    pytest.importorskip("bpy")
    motion = shared_path("motions", "momask_sample_a.bvh")
    done = subprocess.run([sys.executable, "-m", "momask_blender.demo", "--source", str(motion), "--frames", "1",
                           *TILE, "--out", str(tmp_path / "cli")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout[done.stdout.index("{"):])["files"]["png"] == str(tmp_path / "cli.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.blend", "cli.bvh", "cli.png"]

"""`python -m momask_blender.bake` (and the demo): bad values and output paths are one line on stderr,
refused before the work where they can be; what we write is replaced whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from momask_blender import bake, demo  # noqa: E402
from tests.conftest import shared_path  # noqa: E402


@pytest.fixture(scope="module")
def rig() -> Path:
    return shared_path("rigs", "mpfb_game_engine_apose.glb")


@pytest.fixture(scope="module")
def motion() -> Path:
    return shared_path("motions", "momask_sample_a.bvh")


def _fails(capsys, argv: list[str], match: str) -> str:
    code = bake.main(argv)
    err = capsys.readouterr().err
    assert code != 0 and match in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("fps", ["nan", "0.001", "-24", "1e9"])
def test_bad_frame_rates_name_the_limit(rig, motion, tmp_path, capsys, fps):
    _fails(capsys, ["--rig", str(rig), "--source", str(motion), "--fps", fps, "--out", str(tmp_path / "o.blend")],
           "frames per second) must be")
    assert list(tmp_path.iterdir()) == []


def test_a_frame_start_outside_blender_is_named(rig, motion, tmp_path, capsys):
    _fails(capsys, ["--rig", str(rig), "--source", str(motion), "--frame-start", str(2**40),
                    "--out", str(tmp_path / "o.blend")], "--frame-start must be a whole number from -1048574")


@pytest.mark.parametrize("kind", ["symlink", "pipe", "folder", "under a file"])
def test_outputs_that_are_not_regular_files_are_refused_before_any_work(rig, motion, tmp_path, capsys, kind):
    """A pipe stands in for a device (/dev/full): refused alike, and harmless if it ever were not."""
    real = tmp_path / "real.blend"
    real.write_bytes(b"keep")
    (tmp_path / "link.blend").symlink_to(real)
    os.mkfifo(tmp_path / "pipe")
    out = {"symlink": tmp_path / "link.blend", "pipe": tmp_path / "pipe", "folder": tmp_path,
           "under a file": real / "o.blend"}[kind]
    _fails(capsys, ["--rig", str(rig), "--source", str(motion), "--out", str(out)], "--out file")
    _fails(capsys, ["--rig", str(rig), "--source", str(motion), "--out", str(tmp_path / "o.blend"),
                    "--export-bvh", str(out)], "--export-bvh file")
    assert real.read_bytes() == b"keep" and (tmp_path / "link.blend").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.blend", "pipe", "real.blend"]


def test_export_bvh_replaces_the_old_file_whole(rig, motion, tmp_path, capsys):
    out, bvh = tmp_path / "o.blend", tmp_path / "motion.bvh"
    bvh.write_text("the user's old BVH")
    assert bake.main(["--rig", str(rig), "--source", str(motion), "--out", str(out), "--export-bvh", str(bvh)]) == 0
    capsys.readouterr()
    assert bvh.read_text().startswith("HIERARCHY") and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion.bvh", "o.blend"]


@pytest.mark.parametrize("flag", ["--sequence", "--bone-map"])
def test_a_text_file_that_is_not_utf8_is_one_line(rig, motion, tmp_path, capsys, flag):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("3\tune personne saute \xe0 pieds joints\n".encode("latin-1"))
    source = ["--prompt", "walk"] if flag == "--sequence" else ["--source", str(motion)]
    _fails(capsys, ["--rig", str(rig), *source, flag, str(latin), "--out", str(tmp_path / "o.blend")],
           "is not UTF-8 text")
    assert not (tmp_path / "o.blend").exists()


def test_a_bone_map_preset_replaces_detections_record(rig, motion, tmp_path):
    """--bone-map stores the user's map: the record of how detection found the old one goes with it
    (else the editor would show detection's confidence for the preset's joints)."""
    import json

    from momask_blender.rig.bone_map import save_preset
    from momask_blender.scene.bone_maps import BONE_MAP_INFO_PROPERTY, detection_for, store_detection
    from momask_blender.scene.characters import import_rig, pick_armature

    import_rig(rig)
    obj = pick_armature(None)
    found = detection_for(obj)
    store_detection(obj, found)
    blend = tmp_path / "detected.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    preset = dict(found.bone_map)
    preset.pop("head")
    save_preset(tmp_path / "preset.json", preset)
    args = bake.build_parser().parse_args(["--blend", str(blend), "--armature", obj.name, "--source", str(motion),
                                           "--bone-map", str(tmp_path / "preset.json"),
                                           "--out", str(tmp_path / "o.blend")])
    obj = bake.prepare_scene(args)
    assert json.loads(obj["momask_bone_map"]) == preset and BONE_MAP_INFO_PROPERTY not in obj.keys()


def test_a_zero_byte_npy_source_is_one_line(rig, tmp_path, capsys):
    (tmp_path / "m.npy").write_bytes(b"")
    _fails(capsys, ["--rig", str(rig), "--source", str(tmp_path / "m.npy"), "--out", str(tmp_path / "o.blend")],
           "is empty (0 bytes)")
    assert not (tmp_path / "o.blend").exists()


def test_a_seed_past_64_bits_is_one_line(rig, tmp_path, capsys, reference_dir):
    _fails(capsys, ["--rig", str(rig), "--prompt", "walk", "--seed", str(2**70), "--checkpoints",
                    str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt"),
                    "--out", str(tmp_path / "o.blend")], "seed must be a whole number")
    assert not (tmp_path / "o.blend").exists()


def test_inpaint_frames_past_any_animation_are_one_line(rig, motion, tmp_path, capsys, reference_dir):
    """The edit runs in a process of its own, as a user runs it: opening a .blend in this one would
    also run the load handlers that earlier tests' add-ons (Rigify) left behind."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    blend = tmp_path / "baked.blend"
    assert bake.main(["--rig", str(rig), "--source", str(motion), "--out", str(blend)]) == 0
    capsys.readouterr()
    done = subprocess.run([sys.executable, "-m", "momask_blender.bake", "--blend", str(blend), "--inpaint", "40",
                           "2147483648", "--prompt", "jump", "--checkpoints", str(reference_dir / "checkpoints"),
                           "--clip", str(reference_dir / "clip" / "ViT-B-32.pt"), "--out",
                           str(tmp_path / "edited.blend")], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0 and "outside the animation" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert not (tmp_path / "edited.blend").exists()


def test_the_demo_refuses_a_symlinked_output_before_any_work(tmp_path, capsys):
    real = tmp_path / "real.bvh"
    real.write_text("keep")
    (tmp_path / "out.bvh").symlink_to(real)
    code = demo.main(["--source", str(shared_path("motions", "humanml3d_000612.npy")), "--out",
                      str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "symbolic link" in err and "Traceback" not in err, err
    assert real.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bvh", "real.bvh"]


def test_the_demo_refuses_a_bad_frame_rate(tmp_path, capsys):
    code = demo.main(["--source", str(shared_path("motions", "humanml3d_000612.npy")), "--fps", "0",
                      "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "frames per second) must be" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_exporting_keeps_the_users_bvh(rig, motion, tmp_path):
    """The file-size limit stands in for a full disk: the old BVH stays whole, no partial file, no
    traceback (the old code left the first bytes of the new file in place of the user's)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    bvh = tmp_path / "motion.bvh"
    bvh.write_text("the user's BVH\n")
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
              "from momask_blender import bake\n"
              "sys.exit(bake.main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "--rig", str(rig), "--source", str(motion), "--out",
                           str(tmp_path / "o.blend"), "--export-bvh", str(bvh)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "the previous file is kept" in done.stderr, done.stderr[-2000:]
    assert bvh.read_text() == "the user's BVH\n" and sorted(p.name for p in tmp_path.iterdir()) == ["motion.bvh"]

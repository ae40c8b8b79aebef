"""The demo (`make demo`): the PNG strip, where the weights are found, the random-weights fallback,
and one end-to-end run on Blender as a module."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from momask_blender.demo import RANDOM_TAG, make_random_weights
from momask_blender.errors import MomaskError
from momask_blender.scene import strip
from momask_blender.setup.weights import checkpoints_ok, find_weights
from tests.conftest import shared_path

# ----------------------------------------------------------------------------- the PNG strip


def decode_png(path: Path) -> np.ndarray:
    """An independent reader for the strip's PNGs: chunks, CRCs, zlib, filter type 0 rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, chunks = 8, b"", []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
        chunks.append(tag)
        if tag == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 2, 0)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def test_png_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = strip.write_png(tmp_path / "x.png", rgb)
    assert (decode_png(path) == rgb).all()
    assert (strip.read_png(path) == rgb).all()
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(ValueError):
        strip.write_png(tmp_path / "bad.png", np.zeros((4, 4)))


def _figure(frames: int = 3) -> tuple[np.ndarray, list, list]:
    """A stick figure facing -Y: pelvis, neck, head; a left arm held out sideways (+X), a right leg."""
    p = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5], [0.0, 0.0, 1.7], [0.6, 0.0, 1.45], [-0.1, 0.0, 0.0],
                  [0.1, 0.0, 1.0], [-0.1, 0.0, 1.0]])
    pts = np.repeat(p[None], frames, 0)
    pts[:, :, 1] -= np.arange(frames)[:, None] * 0.5  # walks 0.5 m toward -Y per frame
    segs = [(0, 1), (1, 2), (1, 3), (6, 4), (5, 6)]
    kinds = [strip.CENTER, strip.CENTER, strip.LEFT, strip.RIGHT, strip.CENTER]
    return pts, segs, kinds


def test_strip_has_the_expected_size_and_draws_bones_where_joints_project(tmp_path):
    pts, segs, kinds = _figure(3)
    panel = (120, 200)
    img = strip.render_strip(pts, segs, kinds, labels=["A", "B", "C"], panel=panel, facing=np.array([0, -1.0, 0]))
    path = strip.write_png(tmp_path / "strip.png", img)
    back = decode_png(path)
    pw, ph = panel
    assert back.shape == (strip.header_height() + 2 * ph + 8, strip.margin_left(2) + 3 * pw + 8, 3)
    assert (back == img).all()
    scale = ph * strip.HEIGHT_FILL / 1.7
    bg = np.array(strip.BACKGROUND)

    def px(row, col, u, z, centre):
        x = strip.margin_left(2) + col * pw + pw / 2 + (u - centre) * scale
        y = strip.header_height() + row * ph + ph - strip.FLOOR_MARGIN - z * scale
        return int(y), int(x)

    def close(yx, colour, tol=40):
        return np.abs(back[yx].astype(int) - np.array(colour)).max() <= tol

    for col in range(3):
        # side view (row 0): screen x is the facing (-Y); every joint has x... the figure is 0 wide there
        assert close(px(0, col, 0.0, 1.25, 0.0), strip.COLOURS[strip.CENTER])      # the spine
        assert close(px(0, col, 0.0, 0.5, 0.0), strip.COLOURS[strip.RIGHT], 90)   # the leg, near side
        assert close(px(0, col, 0.3, 1.25, 0.0), bg, 2)                           # nothing in front
        # front view (row 1): screen x is world +X; the left arm goes right, the leg slightly left
        assert close(px(1, col, 0.0, 1.25, 0.0), strip.COLOURS[strip.CENTER])
        assert close(px(1, col, 0.45, 1.4625, 0.0), strip.COLOURS[strip.LEFT])
        assert close(px(1, col, -0.1, 0.3, 0.0), strip.COLOURS[strip.RIGHT], 90)
        assert close(px(1, col, -0.4, 1.4, 0.0), bg, 2)
    # the floor line under each panel
    assert close(px(0, 1, 0.5, -1 / scale, 0.0), strip.FLOOR, 30)


def test_strip_follows_the_facing_and_rejects_bad_input():
    pts, segs, kinds = _figure(2)
    facing = strip.body_facing(pts, [5], [6])  # left hip at +X: faces -Y
    assert np.allclose(facing, [[0, -1, 0]] * 2)
    assert np.allclose(strip.travel_direction(pts), [0, -1, 0])
    assert np.allclose(strip.travel_direction(pts[:1].repeat(2, 0)), [0, -1, 0])
    turned = pts.copy()
    turned[..., :2] = turned[..., :2] @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # the whole figure turned 90°
    a = strip.render_strip(pts, segs, kinds, facing=strip.body_facing(pts, [5], [6]))
    b = strip.render_strip(turned, segs, kinds, facing=strip.body_facing(turned, [5], [6]))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # same picture: the views turn with the body
    with pytest.raises(ValueError):
        strip.render_strip(np.zeros((3, 4)), segs)
    nan = pts.copy()
    nan[0, 3] = np.nan
    assert strip.render_strip(nan, segs, kinds).shape[2] == 3  # a NaN joint is skipped, not drawn
    assert strip.pick_frames(100, 8) == [0, 14, 28, 42, 57, 71, 85, 99]
    assert strip.pick_frames(3, 8) == [0, 1, 2] and strip.pick_frames(0) == []


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


# ----------------------------------------------------------------------------- end to end (Blender)


def _run_demo(argv, capsys) -> dict:
    pytest.importorskip("bpy")
    from momask_blender import demo

    assert demo.main(argv) == 0
    out = capsys.readouterr()
    return json.loads(out.out[out.out.index("{"):]), out.err


def test_demo_end_to_end_with_the_reference_weights(tmp_path, capsys, monkeypatch):
    ref = shared_path("reference")
    monkeypatch.delenv("MOMASK_CHECKPOINTS", raising=False)
    monkeypatch.delenv("MOMASK_CLIP", raising=False)
    info, err = _run_demo(["--checkpoints", str(ref / "checkpoints"), "--clip", str(ref / "clip" / "ViT-B-32.pt"),
                           "--steps", "2", "--seconds", "2", "--frames", "4", "--out", str(tmp_path / "out")], capsys)
    files = {k: Path(v) for k, v in info["files"].items()}
    assert files == {"blend": tmp_path / "out.blend", "bvh": tmp_path / "out.bvh", "png": tmp_path / "out.png"}
    assert all(p.is_file() for p in files.values())
    assert files["bvh"].read_text().startswith("HIERARCHY")
    img = decode_png(files["png"])
    assert img.shape[1] == strip.margin_left(2) + 4 * 150 + 8
    assert (img != np.array(strip.BACKGROUND)).any(-1).mean() > 0.02  # something is drawn
    assert info["weights"]["origin"] == "--checkpoints" and abs(info["frames"] - 60) <= 1 and info["fps"] == 30
    assert info["joints_mapped"] >= 16 and info["seconds"]["total_s"] > 0
    assert "RANDOM" not in err

    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(files["blend"]))
    arm = bpy.data.objects[info["armature"]]
    assert arm.animation_data.action.name == info["action"]


def test_demo_with_random_weights_says_so_loudly(tmp_path, capsys, monkeypatch):
    from momask_blender import demo

    monkeypatch.setattr(demo, "RANDOM_CACHE", tmp_path / "cache")
    info, err = _run_demo(["--random-weights", "--steps", "2", "--seconds", "1", "--frames", "3",
                           "--out", str(tmp_path / "out")], capsys)
    for path in info["files"].values():
        assert Path(path).name.startswith(f"out_{RANDOM_TAG}.") and Path(path).is_file()
    assert err.count("MEANINGLESS") >= 2 and "download_models.sh" in err and "MOMASK_CHECKPOINTS" in err
    assert info["weights"]["random"] is True and info["weights"]["meaningful"] is False
    img = decode_png(Path(info["files"]["png"]))
    top = img[: strip.header_height(warning="x") - strip.header_height()]
    red = (top[..., 0] > 150) & (top[..., 1] < 90)
    assert red.sum() > 100  # the red warning line on the picture itself


def test_demo_bakes_a_motion_file(tmp_path, capsys):
    motion = shared_path("motions", "humanml3d_000612.npy")
    info, _ = _run_demo(["--source", str(motion), "--frames", "2", "--out", str(tmp_path / "src")], capsys)
    assert info["weights"] is None and info["frames"] > 200 and Path(info["files"]["png"]).is_file()

"""Fuzzing the doors with hypothesis: BVH files, motion arrays, command-line arguments and install
archives. Whatever comes in, the answer is a correct result or one clear MomaskError / ModelError
(InstallError for archives): never another exception, a hang or a half-written file.

Bounded: few examples each, small inputs (the code under test refuses big ones before allocating),
a deadline per example; the whole file runs in well under a minute on two cores.
"""
from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import model_core.generation.pipeline  # noqa: E402,F401  (torch imported once here, not in the first example)
from model_core import ModelError
from model_core.cli import main as model_cli
from momask_blender.errors import MomaskError
from momask_blender.rig import bvh_check
from momask_blender.rig.resample import fps_settings
from momask_blender.rig.retarget import RetargetOptions, retarget
from momask_blender.rig.skeleton import check_joints
from momask_blender.setup import assets
from momask_blender.setup.install import InstallError, install_models_zip
from tests.bvh_samples import GOOD_BVH
from tests.skeleton_rig import skeleton_plan
from tests.test_install_files import release_files

# Deadlines are generous: the machine is shared, and a deadline only flags slowness after the fact.
FAST = settings(max_examples=200, deadline=10_000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
SLOW = settings(max_examples=25, deadline=60_000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

# ----------------------------------------------------------------------------- BVH files

_TOKENS = ["HIERARCHY", "ROOT", "JOINT", "End", "Site", "{", "}", "OFFSET", "CHANNELS", "MOTION", "Frames:",
           "Frame", "Time:", "Xrotation", "Yposition", "0", "1", "3", "6", "-1", "0.05", "1e300", "1e-320", "nan",
           "inf", "x", "", "\t", "Hips", "9" * 30]


@st.composite
def bvh_texts(draw) -> str:
    """The tiny BVH with a few lines replaced, dropped, duplicated or filled with random tokens."""
    lines = GOOD_BVH.read_text().splitlines()
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["replace", "drop", "duplicate", "tokens"]))
        if action == "drop" and len(lines) > 1:
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "tokens":
            lines[at] = " ".join(draw(st.lists(st.sampled_from(_TOKENS), min_size=0, max_size=8)))
        else:
            lines[at] = draw(st.text(st.characters(codec="utf-8"), max_size=40))
    return "\n".join(lines) + "\n"


@FAST
@given(text=bvh_texts())
def test_bvh_files_are_read_or_refused_with_a_message(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.bvh"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            info = bvh_check.check_bvh(path)
        except MomaskError as err:
            assert str(err) and "\n" not in str(err) and "Traceback" not in str(err)
            event("refused")
            return
        event("read")
        assert info.frames >= 2 and 1 <= info.fps <= 1000 and info.channels > 0


@st.composite
def humanoid_bvh_texts(draw) -> str:
    """A HumanML3D-skeleton BVH (our exporter's) of a real motion scaled, shaken and retimed, maybe
    with one line spoiled: files that mostly pass the check and reach Blender's importer."""
    from model_core.motion.bvh import bvh_text

    joints = _SOURCE[: draw(st.integers(2, 12))] * draw(st.sampled_from([1.0, 0.01, 100.0, 1e-9]))
    joints = joints + np.random.default_rng(draw(st.integers(0, 99))).normal(0, draw(st.sampled_from([0, 0.05])),
                                                                              joints.shape)
    fps = draw(st.sampled_from([20.0, 30.0, 120.0, 1.0, 1000.0]))
    try:
        text = bvh_text(joints, fps)
    except ModelError:  # our own exporter refuses a collapsed skeleton: keep the unscaled motion
        text = bvh_text(_SOURCE[:4], fps)
    lines = text.splitlines()
    if draw(st.integers(0, 3)) == 0:  # one file in four spoiled
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = " ".join(draw(st.lists(st.sampled_from(_TOKENS), max_size=6)))
    return "\n".join(lines) + "\n"


def _standing_motion(frames: int = 12) -> np.ndarray:
    """The uniform skeleton's T-pose drifting forward with a little sway: a motion made here, not read."""
    from momask_blender.rig.skeleton import t_pose

    sway = np.random.default_rng(0).normal(0, 0.01, (frames, 22, 3))
    forward = np.linspace(0, 0.5, frames)[:, None] * np.array([0.0, 0.0, 1.0])
    return t_pose()[None] + sway + forward[:, None]


_SOURCE = _standing_motion()


@SLOW
@given(text=st.one_of(humanoid_bvh_texts(), humanoid_bvh_texts(), bvh_texts()))
def test_bvh_files_through_blenders_importer(text):
    """Files go through our check, then Blender's own importer: joints, or one line."""
    pytest.importorskip("bpy")
    from momask_blender.scene import sources

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.bvh"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            joints, fps = sources.load_bvh(path)
        except MomaskError as err:
            assert "\n" not in str(err) and "Traceback" not in str(err), str(err)
            event("refused: " + str(err).split(":")[1][:40] if ":" in str(err) else str(err)[:40])
            return
        event("joints")
        assert np.isfinite(joints).all() and joints.shape[1:] == (22, 3) and fps > 0


# ----------------------------------------------------------------------------- motion arrays

_SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, 1e300, np.nan, np.inf, -np.inf, 1e6, 1e7])


@st.composite
def joint_arrays(draw) -> np.ndarray:
    """A real-looking motion (a third of the time), or arrays of odd shapes, kinds, sizes and values."""
    if draw(st.integers(0, 2)) == 0:
        return _standing_motion(draw(st.integers(2, 12))) * draw(st.sampled_from([1.0, 0.01, 100.0]))
    frames = draw(st.integers(0, 12))
    shape = draw(st.sampled_from([(frames, 22, 3), (frames, 22, 3), (frames, 21, 3), (frames, 66), (22, 3)]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int16, np.bool_, np.complex64]))
    base = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(0, 0.5, shape)
    base *= draw(st.sampled_from([0.0, 1e-9, 1.0, 100.0, 1e300]))
    flat = base.reshape(-1)
    for _ in range(draw(st.integers(0, 3))):
        if flat.size:
            flat[draw(st.integers(0, flat.size - 1))] = draw(_SPECIAL)
    with np.errstate(all="ignore"):
        return base.astype(dtype)


@FAST
@given(joints=joint_arrays(), fps=st.sampled_from([20.0, 24.0, 29.97, 60.0, 0.0, -1.0, 1e9, np.nan]))
def test_motion_arrays_bake_or_are_refused(joints, fps):
    try:
        retarget(check_joints(joints), _PLAN, RetargetOptions(fps=fps, foot_lock=False))
    except MomaskError as err:
        assert str(err) and "\n" not in str(err)
        event("refused")
        return
    event("baked")
    # accepted: real, finite joints with a body and legs, at a rate within the limits
    assert np.isfinite(joints.astype(np.float64)).all() and 1 <= fps <= 1000


@FAST
@given(data=hnp.arrays(st.sampled_from([np.float32, np.float64, np.int8, np.bool_, np.complex64, "U3"]),
                       hnp.array_shapes(max_dims=3, max_side=8),
                       elements=None, fill=st.nothing()) | joint_arrays())
def test_npy_motion_files_load_or_are_refused(data):
    from momask_blender.scene.sources import load_npy

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npy"
        np.save(path, data)
        raw = path.read_bytes()
        for content in (raw, raw[: len(raw) // 2], b""):
            path.write_bytes(content)
            try:
                joints, fps = load_npy(path)
            except MomaskError as err:
                assert str(err) and "\n" not in str(err)
                continue
            assert joints.shape[1:] == (22, 3) and np.isfinite(joints).all() and fps == 20


_PLAN = skeleton_plan()

# ----------------------------------------------------------------------------- constraints files

_FRAMES = st.one_of(st.integers(-2, 60), st.sampled_from([1.5, "3", None, 10**9]))
_GOOD_ITEMS = st.one_of(
    st.fixed_dictionaries({"frame": st.integers(0, 400), "facing": st.floats(-7, 7)}),
    st.fixed_dictionaries({"frame": st.integers(0, 400), "joint": st.sampled_from(["pelvis", "head", "left_wrist"]),
                           "position": st.lists(st.floats(-3, 3), min_size=3, max_size=3)}),
    st.fixed_dictionaries({"frame": st.integers(0, 400), "joint": st.just("pelvis"), "axes": st.just("xz"),
                           "position": st.lists(st.floats(-3, 3), min_size=2, max_size=2)}))
_ANY_ITEMS = st.one_of(
    st.fixed_dictionaries({"frame": _FRAMES, "facing": st.one_of(st.floats(-7, 7), st.sampled_from(
        [float("nan"), float("inf"), "north", None, True]))}),
    st.fixed_dictionaries(
        {"frame": _FRAMES, "joint": st.sampled_from(["pelvis", "head", "left_wrist", "right_ankle", "tail", 3]),
         "position": st.lists(st.one_of(st.floats(-3, 3), st.sampled_from([float("nan"), "1"])), max_size=4)},
        optional={"axes": st.sampled_from(["xyz", "xz", "y"]), "extra": st.just(1)}),
    st.integers(), st.text(max_size=5))


@st.composite
def constraint_files(draw) -> bytes:
    """A constraints document (mostly well formed, facings among the joints), or damaged bytes."""
    import json

    items = draw(st.lists(_GOOD_ITEMS, max_size=5))
    if draw(st.integers(0, 2)) == 0:
        items.insert(draw(st.integers(0, len(items))), draw(_ANY_ITEMS))
    kind = draw(st.sampled_from(["document"] * 5 + ["list", "other keys", "cut", "latin-1"]))
    text = json.dumps({"constraints": items} if kind != "list" else items)
    if kind == "other keys":
        text = json.dumps({"constraints": items, "version": 2})
    elif kind == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text.encode("latin-1" if kind == "latin-1" else "utf-8", errors="replace") + (
        b"\xff" if kind == "latin-1" else b"")


@FAST
@given(data=constraint_files())
def test_constraints_files_become_targets_or_a_message(data):
    """The add-on's constraints file (`momask_blender.bake --constraints`, the Direct section): a facing
    becomes a facing target, every target reaches the model's constraints, anything else a MomaskError."""
    from model_core.control import Facing, read_constraints
    from momask_blender.jobs.directing import _file_targets
    from momask_blender.rig import directing as rd

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.json"
        path.write_bytes(data)
        try:
            targets = _file_targets(str(path), _PLAN)
            constraints = rd.constraints_from(rd.to_model(targets, rd.placement_for(_PLAN)), 10**9, "the motion")
        except MomaskError as err:
            assert str(err) and "\n" not in str(err) and str(path) in str(err)
            event("refused")
            return
        event("read")
        facings = [c for c in read_constraints(path) if isinstance(c, Facing)]
        event("with a facing" if facings else "joints only")
        assert [t.position[0] for t in targets if t.joint == rd.FACING] == [f.angle for f in facings]
        assert sum(isinstance(c, Facing) for c in constraints) == len(facings)


# ----------------------------------------------------------------------------- command-line arguments

_NUMBERS = st.sampled_from(["0", "-1", "1", "2", "nan", "inf", "-inf", "1e300", "1e-320", "0.5", "3",
                            str(2**64), str(2**70), "1e9", "abc", ""])
_DEVICES = st.sampled_from(["cpu", "cuda", "cuda:7", "auto", "mps", "meta", "bogus", "", "CPU", "cpu:0"])


@st.composite
def generate_arguments(draw, tmp: Path) -> list[str]:
    argv = ["generate", draw(st.sampled_from(["a person walks", "", "   ", "x" * 30_000, "é\x00"]))]
    for flag in ("--seconds", "--seed", "--steps", "--guidance", "--residual-guidance", "--temperature",
                 "--topk", "--variations"):
        if draw(st.booleans()):
            argv += [flag, draw(_NUMBERS)]
    if draw(st.booleans()):
        argv += ["--device", draw(_DEVICES)]
    out = draw(st.sampled_from(["o.npz", "", "sub/dir/o.npz", ".", "file/o.npz", "/proc/o.npz", "pipe"]))
    return [*argv, "--out", str(tmp / out) if out and not out.startswith("/") else out,
            "--checkpoints", str(tmp / "no_checkpoints_here"), "--clip", str(tmp / "none.pt")]


@FAST
@given(data=st.data())
def test_model_command_line_arguments_are_one_line_errors(data):
    """Every argument is checked before the model loads: the fuzzed values end in one line each
    (the checkpoints do not exist, so a fully valid set ends in 'not found', also one line)."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "file").write_text("a file, not a folder")
        os.mkfifo(tmp / "pipe")
        argv = data.draw(generate_arguments(tmp))
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            try:
                code = model_cli(argv)
            except SystemExit as exit_:  # argparse: usage and a message for a value it cannot parse
                code = exit_.code
        text = err.getvalue()
        assert code != 0 and "Traceback" not in text, text
        assert sorted(p.name for p in tmp.iterdir()) == ["file", "pipe"], text  # nothing written


@SLOW
@given(seconds=st.floats(0.2, 3.0), seed=st.integers(0, 2**64 - 2), steps=st.integers(1, 3),
       guidance=st.floats(0, 100), temperature=st.floats(1e-10, 100), topk=st.floats(0, 0.99),
       variations=st.integers(1, 2))
def test_valid_model_arguments_give_the_motion_they_ask_for(reference_files, seconds, seed, steps, guidance,
                                                          temperature, topk, variations):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "o.npz"
        argv = ["generate", "a person walks", "--seconds", repr(seconds), "--seed", str(seed), "--steps", str(steps),
                "--guidance", repr(guidance), "--temperature", repr(temperature), "--topk", repr(topk),
                "--variations", str(variations), "--out", str(out), *reference_files]
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            assert model_cli(argv) == 0
        frames = int(seconds * 20 + 1e-6) // 4 * 4
        with np.load(out) as motion:
            assert motion["joints"].shape == (variations, frames, 22, 3) and np.isfinite(motion["joints"]).all()
        assert [p.name for p in Path(folder).iterdir()] == ["o.npz"]


@pytest.fixture(scope="module")
def reference_files(reference_dir) -> list[str]:
    return ["--checkpoints", str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt")]


@FAST
@given(rate=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12)))
def test_scene_frame_rates_are_set_or_refused(rate):
    try:
        fps, base = fps_settings(rate)
    except MomaskError as err:
        assert "frames per second" in str(err)
        return
    assert 1 <= fps <= 1000 and abs(fps / base - rate) <= 1e-9 * max(1.0, abs(rate))


# ----------------------------------------------------------------------------- install archives

_NAMES = st.sampled_from(["extra.txt", "../evil.txt", "/abs.txt", "C:/win.txt", "a/../../up.txt", "x" * 300,
                          "dir/", "dir", "dir/inside.txt", f"{assets.HUMANML3D.rvq}/meta/mean.npy",
                          f"{assets.HUMANML3D.rvq}/opt.txt", "t2m/", "link", "", "./dot.txt", "a\\b.txt"])


@st.composite
def archives(draw) -> list[tuple[zipfile.ZipInfo, bytes]]:
    """The release's files, some left out, plus members with hostile names, kinds and sizes."""
    members = []
    prefix = draw(st.sampled_from(["", "checkpoints/t2m/", "top/"]))
    for rel, data in release_files().items():
        if draw(st.integers(0, 29)) > 0:
            members.append((zipfile.ZipInfo(prefix + rel), data))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 4]))):
        info = zipfile.ZipInfo(draw(_NAMES) or "empty")
        kind = draw(st.sampled_from(["file", "symlink", "bomb"]))
        data = b"payload"
        if kind == "symlink":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            data = b"/etc/passwd"
        elif kind == "bomb":
            info.compress_type = zipfile.ZIP_DEFLATED
            data = b"\0" * (2 << 20)
        members.append((info, data))
    return members


@FAST
@given(members=archives())
def test_install_archives_install_or_are_refused_leaving_nothing(members):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        path = tmp / "models.zip"
        with zipfile.ZipFile(path, "w") as zf, np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names are part of the fuzz
                for info, data in members:
                    zf.writestr(info, data)
        root = tmp / "user"
        try:
            installed = install_models_zip(path, root)
        except InstallError as err:
            assert str(err) and "Traceback" not in str(err)
            event("refused")
            assert not root.exists() or not any(p.name.startswith(".install-") for p in root.iterdir())
            assert not [p for p in root.rglob("*") if p.is_file()] if root.exists() else True
        else:
            event("installed")
            assert installed and all(p.is_dir() and p.resolve().is_relative_to(root.resolve()) for p in installed)
        outside = sorted(p.name for p in tmp.iterdir())
        assert outside in (["models.zip"], ["models.zip", "user"]), outside


def test_the_fuzz_inputs_cover_both_outcomes():
    """The strategies reach accepted inputs as well as refused ones (else the fuzz proves little)."""
    from momask_blender.jobs.directing import _file_targets

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.json"
        path.write_bytes(b'{"constraints": [{"frame": 4, "facing": 1.5}, {"frame": 4, "joint": "head", '
                         b'"position": [0, 1.6, 0.2]}]}')
        assert sorted(t.joint for t in _file_targets(str(path), _PLAN)) == ["facing", "head"]
        path.write_bytes(b'{"constraints": [{"frame": 4, "facing": "north"}]}')
        with pytest.raises(MomaskError, match="facing must be a number"):
            _file_targets(str(path), _PLAN)
    ok = bvh_check.check_bvh(GOOD_BVH)
    assert ok.frames == 3
    with pytest.raises((MomaskError, ModelError)):
        check_joints(np.zeros((3, 22, 3)))

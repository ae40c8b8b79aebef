"""model_core.inputs: the one place numbers, frame rates, paths to write, motion arrays and feature
statistics are checked. Each bad value is one ModelError naming it; files are written whole or not."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core import ModelError
from model_core.inputs import arrays, numbers, paths, statistics, text, timing
from tests.conftest import ROOT

# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "3", None, True, 1j])
def test_finite_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(ModelError, match="guidance must be"):
        numbers.finite(value, "guidance", 0, 100)


def test_finite_names_the_range():
    with pytest.raises(ModelError, match=r"guidance must be from 0 to 100, got 1e\+300"):
        numbers.finite(1e300, "guidance", 0, 100)
    assert numbers.finite(np.float32(2.5), "x", 0, 3) == 2.5


@pytest.mark.parametrize("value", [2**64, -1, 2**70, 1.5, True])
def test_seeds_outside_64_bits_are_refused(value):
    with pytest.raises(ModelError, match="seed must be a whole number"):
        numbers.seed(value)


def test_a_seed_leaves_room_for_its_variations():
    assert numbers.seed(2**64 - 1) == 2**64 - 1
    with pytest.raises(ModelError, match="18446744073709551612"):
        numbers.seed(2**64 - 1, count=4)


# ----------------------------------------------------------------------------- frame rates and counts


@pytest.mark.parametrize("fps", [0.001, -24, 0, float("nan"), float("inf"), 1e6])
def test_frame_rates_out_of_range_name_the_limit(fps):
    with pytest.raises(ModelError, match="from 1 to 1000"):
        timing.frame_rate(fps, "--fps")


@pytest.mark.parametrize("frame_time", [1000, 1e300, float("inf"), 1e-300, 1e-320, 0, -0.05, float("nan")])
def test_bvh_frame_times_out_of_range_name_the_limit(frame_time):
    with pytest.raises(ModelError, match=r"Frame Time .*from 0\.001 to 1"):
        timing.rate_from_frame_time(frame_time)


def test_a_motion_longer_than_ten_minutes_is_refused():
    with pytest.raises(ModelError, match=r"too long: 700.0 s .*limit is 600 s"):
        timing.motion_frames(700 * 20, 20.0, "the BVH")


def test_an_extreme_ratio_of_frame_rates_is_bounded():
    """600 frames at 1 fps are allowed; at 1000 fps they would be 599,001 frames."""
    with pytest.raises(ModelError, match="599,001 frames, the limit is 72,000 frames"):
        timing.resampled_frames(600, 1.0, 1000.0)
    assert timing.resampled_frames(196, 20.0, 24.0) == 235


# ----------------------------------------------------------------------------- paths to write


def test_writing_replaces_a_file_atomically(tmp_path):
    target = tmp_path / "motion.bvh"
    target.write_text("old")
    paths.write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["motion.bvh"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "motion.bvh"
    target.write_text("the user's motion")

    def broken(stream):
        stream.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(ModelError, match="No space left on device; the previous file is kept"):
        paths.write_file(target, broken)
    assert target.read_text() == "the user's motion"
    assert [p.name for p in tmp_path.iterdir()] == ["motion.bvh"]


def test_a_failed_write_leaves_no_empty_target(tmp_path):
    def broken(stream):
        raise OSError(28, "No space left on device")

    with pytest.raises(ModelError, match="nothing was written"):
        paths.write_file(tmp_path / "new.bvh", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_mid_write_keeps_the_old_file(tmp_path):
    """A real write failure (the file-size limit stands in for a full disk): old file kept, no temporary."""
    target = tmp_path / "out.npz"
    target.write_bytes(b"previous")
    script = ("import resource, signal, sys, numpy as np\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
              "from model_core.inputs.paths import write_npz\n"
              "write_npz(sys.argv[1], {'joints': np.zeros((100, 22, 3))})\n")
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode != 0 and "ModelError" in done.stderr and "the previous file is kept" in done.stderr
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_symlinks_devices_and_folders_are_never_replaced(tmp_path):
    real = tmp_path / "real.npz"
    real.write_bytes(b"keep")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    with pytest.raises(ModelError, match="symbolic link"):
        paths.write_text(link, "x")
    assert link.is_symlink() and real.read_bytes() == b"keep"
    with pytest.raises(ModelError, match="not a regular file"):
        paths.check_output_file("/dev/full")
    with pytest.raises(ModelError, match="is a folder"):
        paths.check_output_file(tmp_path)


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_output_name_is_refused(name):
    with pytest.raises(ModelError, match="no output file given"):
        paths.check_output_file(name)


def test_a_path_under_a_file_or_in_proc_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="is a file, not a folder"):
        paths.check_output_file(tmp_path / "file" / "out.npz")
    with pytest.raises(ModelError, match="cannot"):
        paths.write_text("/proc/momask_out.npz", "x")


def test_a_read_only_file_is_not_replaced(tmp_path):
    target = tmp_path / "locked.bvh"
    target.write_text("keep")
    target.chmod(0o444)
    with pytest.raises(ModelError, match="read-only"):
        paths.write_text(target, "x")
    assert target.read_text() == "keep"


# ----------------------------------------------------------------------------- .npy files and motion arrays


def test_a_zero_byte_npy_is_named(tmp_path):
    path = tmp_path / "motion.npy"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        arrays.read_npy(path, "motion file")


def test_an_npy_header_declaring_terabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (10**12, 263)})
        stream.write(b"\0" * 64)
    with pytest.raises(ModelError, match="declares"):
        arrays.read_npy(path, "motion file")


def test_a_truncated_npy_is_named(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((40, 263)))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="truncated"):
        arrays.read_npy(path)


@pytest.mark.parametrize(("data", "match"), [
    (np.array(["a"] * 66).reshape(1, 22, 3), "text"),
    (np.zeros((4, 22, 3), bool), "booleans"),
    (np.zeros((4, 22, 3), complex), "complex"),
])
def test_motion_arrays_of_the_wrong_kind_are_refused(data, match):
    with pytest.raises(ModelError, match=match):
        arrays.check_joints(data)


def test_all_zero_joints_have_no_body():
    with pytest.raises(ModelError, match="all sit on one point"):
        arrays.check_joints(np.zeros((10, 22, 3)))


@pytest.mark.parametrize("scale", [1e300, 1e7])
def test_joints_far_beyond_any_capture_volume_are_refused(cases, scale):
    with pytest.raises(ModelError, match="beyond"):
        arrays.check_joints(cases["source_joints"][:10] * scale)


def test_real_joints_pass_in_metres_and_millimetres(cases):
    joints = cases["source_joints"][:10]
    np.testing.assert_array_equal(arrays.check_joints(joints), joints)
    arrays.check_joints(joints * 1000)


# ----------------------------------------------------------------------------- feature statistics


@pytest.mark.parametrize(("value", "match"), [
    (np.full(263, 1e38, np.float32), "beyond"),
    (np.array(["0.1"] * 263), "text"),
    (np.zeros(263, complex), "complex"),
    (np.ones(263, bool), "booleans"),
    (np.full(263, np.inf), "NaN or infinite"),
])
def test_bad_statistics_are_named(tmp_path, value, match):
    path = tmp_path / "mean.npy"
    np.save(path, value)
    with pytest.raises(ModelError, match=match) as caught:
        statistics.read_statistic(path, 263)
    assert str(path) in str(caught.value)


def test_a_zero_std_is_refused(tmp_path):
    path = tmp_path / "std.npy"
    np.save(path, np.zeros(263, np.float32))
    with pytest.raises(ModelError, match="non-positive"):
        statistics.read_statistic(path, 263)


def test_statistics_are_read_as_float32(tmp_path: Path):
    path = tmp_path / "mean.npy"
    np.save(path, np.arange(263, dtype=np.float64))
    value = statistics.read_statistic(path, 263)
    assert value.dtype == np.float32 and value[5] == 5


def test_checking_creates_nothing_and_a_failed_write_removes_the_folders_it_made(tmp_path):
    target = tmp_path / "new" / "deeper" / "motion.bvh"
    assert paths.check_output_file(target) == target and list(tmp_path.iterdir()) == []

    def broken(stream):
        raise OSError(28, "No space left on device")

    with pytest.raises(ModelError, match="nothing was written"):
        paths.write_file(target, broken)
    assert list(tmp_path.iterdir()) == []
    paths.write_text(target, "ok")
    assert target.read_text() == "ok"


def test_reading_a_text_file_names_what_is_wrong(tmp_path):
    good = tmp_path / "list.txt"
    good.write_text("2\ta person walks\n", encoding="utf-8")
    assert text.read_text(good, "sequence") == "2\ta person walks\n"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ModelError, match=r"the sequence .*latin.txt is not UTF-8 text \(byte 0xe9 at offset 3\)"):
        text.read_text(latin, "sequence")
    with pytest.raises(ModelError, match="cannot read the preset .*missing.json"):
        text.read_text(tmp_path / "missing.json", "preset")
    with pytest.raises(ModelError, match="cannot read the preset"):
        text.read_text(tmp_path, "preset")  # a folder
    with pytest.raises(ModelError, match="no preset given"):
        text.read_text("", "preset")

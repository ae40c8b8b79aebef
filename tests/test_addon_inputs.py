"""The add-on's pure doors (no Blender): BVH files, motion arrays, frame rates, armature transforms,
files written, install archives and downloads. Each bad input is one MomaskError (InstallError,
DownloadError) naming it, and nothing is kept half-written."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from model_core.errors import ModelError
from model_core.motion.bvh import bvh_text, write_bvh
from momask_blender.errors import MomaskError
from momask_blender.rig import bvh_check
from momask_blender.rig.resample import fps_settings, scene_fps
from momask_blender.rig.rest import check_transform
from momask_blender.rig.retarget import RetargetOptions, retarget
from momask_blender.rig.skeleton import check_joints, t_pose
from momask_blender.setup import assets
from momask_blender.setup.install import InstallError, install_checkpoints_folder, install_models_zip
from tests.bvh_samples import GOOD_BVH, bvh_with

# ----------------------------------------------------------------------------- BVH files


@pytest.mark.parametrize("frame_time", ["1000", "1e300", "inf", "1e-300", "1e-320", "0", "-0.05", "nan"])
def test_bvh_frame_times_out_of_range_are_refused_naming_the_limit(tmp_path, frame_time):
    path = tmp_path / "odd.bvh"
    path.write_text(bvh_with(frame_time=frame_time))
    with pytest.raises(MomaskError, match=r"odd.bvh: Frame Time .*from 0\.001 to 1"):
        bvh_check.check_bvh(path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_bvh_channels_that_are_not_finite_are_refused(tmp_path, value):
    path = tmp_path / "nan.bvh"
    path.write_text(bvh_with(bad_value=value))
    with pytest.raises(MomaskError, match="frame 2 holds NaN or infinite values"):
        bvh_check.check_bvh(path)


def test_a_bvh_with_all_zero_offsets_has_no_skeleton(tmp_path):
    path = tmp_path / "flat.bvh"
    path.write_text(bvh_with(zero_offsets=True))
    with pytest.raises(MomaskError, match="every bone offset is zero"):
        bvh_check.check_bvh(path)


@pytest.mark.parametrize(("text", "match"), [
    ("", "is empty"),
    ("just some text\n", "not a BVH file"),
    (bvh_with(frames=5), "'Frames: 5' but only 3 frames follow"),
    (bvh_with(bad_value="x"), "frame 2 holds a value that is not a number"),
    (bvh_with(drop_value=True), "frame 2 has 8 values, the hierarchy has 9 channels"),
    (bvh_with(frames="many"), "expected a whole number"),
    (bvh_with(frames="100000000"), "too long"),
])
def test_malformed_bvh_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.bvh"
    path.write_text(text)
    with pytest.raises(MomaskError, match=match):
        bvh_check.check_bvh(path)


def test_a_good_bvh_is_read():
    info = bvh_check.check_bvh(GOOD_BVH)
    assert info.frames == 3 and info.fps == pytest.approx(20.0) and info.channels == 9


def test_the_exported_bvh_passes_the_check(tmp_path, cases):
    path = tmp_path / "out.bvh"
    write_bvh(path, cases["source_joints"][:40], 20.0)
    info = bvh_check.check_bvh(path)
    assert info.frames == 40 and len(info.joints) == 22


# ----------------------------------------------------------------------------- motion arrays and rates


def test_all_zero_joints_are_refused():
    with pytest.raises(MomaskError, match="all sit on one point"):
        check_joints(np.zeros((20, 22, 3)))


@pytest.mark.parametrize("scale", [1e300, 1e7])
def test_joints_scaled_past_any_capture_volume_are_refused(cases, scale):
    with pytest.raises(MomaskError, match="beyond"):
        check_joints(cases["source_joints"][:20] * scale)


def test_collapsed_legs_cannot_be_scaled(cases):
    joints = cases["source_joints"][:20].copy()
    for chain in ((0, 1, 4, 7), (0, 2, 5, 8)):
        joints[:, chain[1:]] = joints[:, [0]]
    plan = _plain_plan()
    with pytest.raises(MomaskError, match="legs have no length"):
        retarget(joints, plan, RetargetOptions(fps=24.0))


@pytest.mark.parametrize("rate", [0.001, -24.0, 0.0, float("nan"), float("inf"), 5000.0])
def test_scene_frame_rates_out_of_range_are_refused(rate):
    with pytest.raises(MomaskError, match="frames per second"):
        fps_settings(rate)
    with pytest.raises(MomaskError, match="frames per second"):
        RetargetOptions(fps=rate)


def test_a_tiny_fps_base_is_refused():
    with pytest.raises(MomaskError, match="from 1 to 1000"):
        scene_fps(120, 0.0001)
    assert fps_settings(29.97) == (30, pytest.approx(30 / 29.97))


def test_an_extreme_ratio_of_frame_rates_is_refused_before_any_array(cases):
    joints = cases["source_joints"][:150]
    with pytest.raises(MomaskError, match="the limit is 72,000 frames"):
        retarget(joints, _plain_plan(), RetargetOptions(fps=1000.0), src_fps=1.0)


@pytest.mark.parametrize(("scale", "match"), [((0, 1, 1), "scale of 0"), ((1e-9, 1, 1), "scale of 0"),
                                              ((-1, 1, 1), "mirrored"), ((1, -1, -1), None)])
def test_zero_and_negative_armature_scales(scale, match):
    world = np.diag([*scale, 1.0])
    if match is None:  # two negative axes are a rotation by 180 degrees: nothing is mirrored
        check_transform(world, "Rig")
        return
    with pytest.raises(MomaskError, match=f"armature 'Rig'.*{match}"):
        check_transform(world, "Rig")


def _plain_plan():
    from tests.skeleton_rig import skeleton_plan

    return skeleton_plan()


# ----------------------------------------------------------------------------- files written


def test_export_bvh_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "motion.bvh"
    target.write_text("the user's BVH")
    joints = np.repeat(t_pose()[None], 10, axis=0)
    write_bvh(target, joints)
    assert target.read_text() == bvh_text(joints) and [p.name for p in tmp_path.iterdir()] == ["motion.bvh"]


def test_export_bvh_never_replaces_a_symlink(tmp_path):
    real = tmp_path / "real.bvh"
    real.write_text("keep")
    (tmp_path / "link.bvh").symlink_to(real)
    with pytest.raises(ModelError, match="symbolic link"):
        write_bvh(tmp_path / "link.bvh", np.repeat(t_pose()[None], 10, axis=0))
    assert real.read_text() == "keep" and (tmp_path / "link.bvh").is_symlink()


# ----------------------------------------------------------------------------- install archives


def _release_zip(path: Path, extra=()) -> Path:
    from tests.test_install_files import release_files

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in release_files().items():
            zf.writestr(rel, data)
        for info, data in extra:
            zf.writestr(info, data)
    return path


def test_a_zip_bomb_is_refused_before_writing(tmp_path):
    bomb = zipfile.ZipInfo("t2m/padding.bin")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    path = _release_zip(tmp_path / "m.zip", [(bomb, b"\0" * (8 << 20))])  # 8 MB of zeros deflate to ~8 kB
    with pytest.raises(InstallError, match="zip bomb"):
        install_models_zip(path, tmp_path / "user")
    assert not (tmp_path / "user").exists()


def test_a_zip_declaring_gigabytes_it_does_not_hold_is_refused_before_writing(tmp_path):
    """The member's headers say 4 GiB; its data is 11 bytes (the disk would fill on a real one)."""
    path = _release_zip(tmp_path / "m.zip", [("t2m/huge.bin", b"hello world")])
    data = bytearray(path.read_bytes())
    name = b"t2m/huge.bin"
    local = data.rfind(b"PK\x03\x04", 0, data.find(name))        # the member's own header
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(name))     # its central-directory entry
    for at, size_at in ((local, 22), (central, 24)):                # the uncompressed-size fields
        data[at + size_at: at + size_at + 4] = (0xFFFF_FFF0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("t2m/huge.bin").file_size == 0xFFFF_FFF0
    with pytest.raises(InstallError, match="claims 4,294,967,280 bytes"):
        install_models_zip(path, tmp_path / "user")
    assert not (tmp_path / "user").exists()


def test_a_zip_unpacking_past_the_install_cap_is_refused(tmp_path, monkeypatch):
    from momask_blender.setup import install

    path = _release_zip(tmp_path / "m.zip")
    monkeypatch.setattr(install, "INSTALL_MAX_BYTES", 1000)
    with zipfile.ZipFile(path) as zf, pytest.raises(InstallError, match="more than the 1,000"):
        install.check_zip_members(zf, 1000)
    assert not (tmp_path / "user").exists()


def test_duplicate_zip_members_are_refused(tmp_path):
    rvq = assets.HUMANML3D.rvq
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _release_zip(tmp_path / "m.zip", [(f"{rvq}/meta/mean.npy", b"second copy")])
    with pytest.raises(InstallError, match="twice"):
        install_models_zip(path, tmp_path / "user")
    assert not (tmp_path / "user").exists()


def test_a_name_that_is_both_file_and_folder_is_refused(tmp_path):
    path = _release_zip(tmp_path / "m.zip", [("extra", b"a file"), ("extra/inside.txt", b"and a folder")])
    with pytest.raises(InstallError, match="both a file and a folder"):
        install_models_zip(path, tmp_path / "user")
    assert not (tmp_path / "user").exists()


def test_a_member_name_too_long_for_a_file_system_is_refused(tmp_path):
    path = _release_zip(tmp_path / "m.zip", [("x" * 300 + ".txt", b"long")])
    with pytest.raises(InstallError, match="too long"):
        install_models_zip(path, tmp_path / "user")
    assert not (tmp_path / "user").exists()


def test_a_folder_with_a_file_linked_from_outside_is_refused(tmp_path):
    from tests.test_install_files import release_files

    src = tmp_path / "checkpoints" / "t2m"
    for rel, data in release_files().items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    secret = tmp_path / "secret.txt"
    secret.write_text("not a weight")
    (src / assets.HUMANML3D.rvq / "meta" / "notes.txt").symlink_to(secret)
    with pytest.raises(InstallError, match="outside the folder"):
        install_checkpoints_folder(tmp_path / "checkpoints", tmp_path / "user")
    assert not list((tmp_path / "user").rglob("notes.txt"))

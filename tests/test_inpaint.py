"""Range editing without Blender: windows, the rig pose ↔ 22 joints round trip, putting the
decoded window back, border blends, rotation channels, and the model step on the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_core.motion.rotations import axis_angle
from momask_blender.errors import MomaskError
from momask_blender.rig import windows
from momask_blender.rig.plan import plan_rig
from momask_blender.rig.resample import interpolate
from momask_blender.rig.retarget import RetargetOptions, retarget
from momask_blender.rig.rotations import (
    euler_from_matrix,
    euler_to_quat,
    from_quat,
    polar_rotation,
    quat_to_matrix,
    rotation_angle,
    slerp,
    to_quat,
)
from momask_blender.rig.skeleton import INDEX, JOINTS
from tests.test_retarget import LIMBS, a_pose_rig, walking_turn

# ----------------------------------------------------------------------------- windows


@given(lo=st.integers(-50, 50), length=st.integers(40, 600), a=st.floats(0, 1), b=st.floats(0, 1),
       fps=st.sampled_from([20.0, 24.0, 25.0, 29.97, 30.0, 60.0]))
@settings(max_examples=200, deadline=None)
def test_range_window_invariants(lo, length, a, b, fps):
    hi = lo + length
    s, e = sorted((lo + int(a * length), lo + int(b * length)))
    try:
        w = windows.plan_range(lo, hi, s, e, fps)
    except MomaskError:
        return
    assert w.frames % 4 == 0 and w.frames <= windows.MAX_WINDOW and w.samples == w.frames + 1
    assert w.edit_start % 4 == 0 and w.edit_end % 4 == 0 and w.edit_end > w.edit_start
    assert w.context_mask().sum() >= 4
    assert list(w.keys) == list(range(s, e + 1))
    u = w.key_positions()
    assert u.min() >= w.edit_start - 1e-6 and u.max() <= w.edit_end - 1 + 1e-6  # every key is regenerated
    assert np.isclose(u[0], w.edit_start)  # the range starts on a token border
    frames = w.sample_frames()
    assert frames[0] >= lo - 1e-6 and frames[-1] <= max(hi, s + (w.edit_end - w.edit_start) * w.step) + 1e-6
    x, y = w.covered()
    assert x == s and y >= e


def test_range_window_example_and_note():
    w = windows.plan_range(1, 95, 33, 62, 24.0)
    assert (w.edit_start, w.edit_end) == (w.edit_start, w.edit_start + 28)  # 30 keys = 24.2 model frames → 7 tokens
    assert w.covered() == (33, 66)
    assert w.frames <= 196 and w.first >= 1


@pytest.mark.parametrize("args, message", [
    ((1, 95, 50, 40, 24.0), "before it starts"),
    ((1, 95, 0, 40, 24.0), "outside the animation"),
    ((1, 95, 60, 99, 24.0), "outside the animation"),
    ((1, 95, 40, 43, 24.0), "shorter than one token"),
    ((1, 95, 1, 95, 24.0), "no room for context"),
    ((1, 400, 10, 390, 24.0), "no room for context"),
    ((1, 95, 40, 60, 0.0), "frame rate"),
])
def test_range_window_errors(args, message):
    with pytest.raises(MomaskError, match=message):
        windows.plan_range(*args)


@pytest.mark.parametrize("side", ["AFTER", "BEFORE"])
def test_extension_window(side):
    w = windows.plan_extension(1, 95, 2.0, side, 24.0)
    assert len(w.keys) == 48 and w.frames % 4 == 0 and w.frames + w.edit_end - w.edit_start <= 196
    if side == "AFTER":
        assert w.keys[0] == 96 and w.anchor == 95 and w.offset == 0 and w.edit_start == w.frames
        assert np.isclose(w.key_positions()[0], w.frames + 1 / 1.2)
        assert np.isclose(w.blend_positions()[0], w.frames)
    else:
        assert w.keys[-1] == 0 and w.anchor == 1 and w.offset == 40 and w.keys[0] == -47 and w.edit_start == 0
        assert np.isclose(w.blend_positions()[-1], 40)
    assert w.context_mask().all()


@given(length=st.integers(4, 600), seconds=st.floats(0.05, 9.6), side=st.sampled_from(["AFTER", "BEFORE"]),
       fps=st.sampled_from([20.0, 24.0, 30.0, 60.0]))
@settings(max_examples=200, deadline=None)
def test_extension_window_invariants(length, seconds, side, fps):
    try:
        w = windows.plan_extension(1, 1 + length, seconds, side, fps)
    except MomaskError:
        return
    assert len(w.keys) == round(seconds * fps) and w.frames % 4 == 0 and w.decoded <= windows.MAX_WINDOW
    u = w.blend_positions()
    assert u.min() >= -1e-6 and u.max() <= w.decoded - 1 + 1e-6
    u = w.key_positions()
    assert (u >= w.edit_start - 1e-6).all() and (u <= w.edit_end - (side == "AFTER") + 1e-6).all()
    assert w.sample_frames()[0] >= 1 - 1e-6 and w.sample_frames()[-1] <= 1 + length + 1e-6


@pytest.mark.parametrize("seconds, message", [(0.0, "more than 0"), (-1.0, "more than 0"), (9.7, "at most 9.6"),
                                              (float("nan"), "more than 0")])
def test_extension_errors(seconds, message):
    with pytest.raises(MomaskError, match=message):
        windows.plan_extension(1, 95, seconds, "AFTER", 24.0)
    with pytest.raises(MomaskError, match="shorter than one token"):
        windows.plan_extension(1, 3, 1.0, "AFTER", 24.0)
    with pytest.raises(MomaskError, match="side"):
        windows.plan_extension(1, 95, 1.0, "LEFT", 24.0)


def test_ranges_from_keys_and_preview():
    assert windows.range_from_keys(np.array([40.0, 12.0, 33.5])) == (12, 40)
    with pytest.raises(MomaskError, match="no keyframes are selected"):
        windows.range_from_keys(np.zeros(0))
    assert windows.range_from_preview(True, 5, 20) == (5, 20)
    with pytest.raises(MomaskError, match="preview range"):
        windows.range_from_preview(False, 5, 20)


def test_unmapped_joints_are_listed():
    with pytest.raises(MomaskError, match="left_elbow, right_elbow.*unmapped: .*left_elbow"):
        windows.check_inverse_map({INDEX[j]: i for i, j in enumerate(JOINTS) if "elbow" not in j})
    windows.check_inverse_map({INDEX[j]: i for i, j in enumerate(JOINTS)})


# ----------------------------------------------------------------------------- rig pose ↔ joints


def _pose_matrices(plan, bake):
    """Armature-space pose matrices (F, N, 4, 4) of a bake, as Blender would evaluate them."""
    rig = plan.rig
    A = polar_rotation(rig.world[:3, :3])
    R = polar_rotation(rig.matrices[:, :3, :3])
    F, N = bake.world_rotations.shape[:2]
    pose = np.tile(np.eye(4), (F, N, 1, 1))
    pose[..., :3, :3] = A.T @ bake.world_rotations @ A @ R
    pose[..., :3, 3] = (bake.heads - rig.world[:3, 3]) @ np.linalg.inv(rig.world[:3, :3]).T
    return pose


@pytest.mark.parametrize("face_plus_y, scale", [(False, 1.0), (True, 0.01)])
def test_rig_pose_round_trip(face_plus_y, scale):
    rig, bmap = a_pose_rig(face_plus_y=face_plus_y, scale=scale)
    plan = plan_rig(rig, bmap)
    bake = retarget(walking_turn(60), plan, RetargetOptions(fps=20.0, foot_lock=False))
    joints = windows.rig_joints(plan, _pose_matrices(plan, bake))
    assert joints.shape == (60, 22, 3)
    # the joints are the source's limb directions (HumanML3D axes, any yaw): compare after aligning
    src = walking_turn(60)
    for a, b in LIMBS:
        d0, d1 = src[:, INDEX[b]] - src[:, INDEX[a]], joints[:, INDEX[b]] - joints[:, INDEX[a]]
        assert np.allclose(np.linalg.norm(d0[:, [1]], axis=1) / np.linalg.norm(d0, axis=1),
                           np.linalg.norm(d1[:, [1]], axis=1) / np.linalg.norm(d1, axis=1), atol=0.05), (a, b)
    quats, location = windows.pose_from_joints(plan, joints)
    # back on the rig: the same local rotations and root path as the bake
    angle = np.degrees(rotation_angle(np.swapaxes(quat_to_matrix(quats), -1, -2) @ quat_to_matrix(bake.quats)))
    assert angle.mean() < 1.0 and angle.max() < 5.0, (angle.mean(), angle.max())
    assert np.allclose(location, bake.root_location, atol=1e-6 * max(1.0, np.abs(bake.root_location).max()))


def test_world_deltas_of_rest_are_identity():
    rig, bmap = a_pose_rig(face_plus_y=True, scale=0.01)
    Q = windows.world_deltas(rig.matrices, rig.matrices[None], rig.world)
    assert np.allclose(Q, np.eye(3), atol=1e-9)


# ----------------------------------------------------------------------------- putting the window back


def _yaw(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@given(theta=st.floats(-3.1, 3.1), t=st.tuples(*[st.floats(-5, 5)] * 3))
@settings(max_examples=50, deadline=None)
def test_fit_recovers_yaw_and_translation(theta, t):
    moved = walking_turn(12)
    original = moved @ _yaw(theta).T + np.array(t)
    R, shift = windows.fit_yaw_translation(moved, original)
    assert np.allclose(moved @ R.T + shift, original, atol=1e-8)


def test_put_back_uses_only_context_frames():
    original = walking_turn(40)
    decoded = original @ _yaw(1.0).T + np.array([0.3, -0.1, 2.0])
    decoded[16:24] += 5.0  # the regenerated part: anything
    context = np.ones(40, bool)
    context[16:24] = False
    placed = windows.put_back(decoded, decoded, original, context)
    assert np.allclose(placed[context], original[context], atol=1e-8)
    with pytest.raises(MomaskError, match="no context"):
        windows.put_back(decoded, decoded, original, np.zeros(40, bool))


def test_interpolate_positions():
    x = np.arange(5.0)[:, None] * np.array([1.0, 2.0])
    assert np.allclose(interpolate(x, [0, 1.5, 4, 9]), [[0, 0], [1.5, 3], [4, 8], [4, 8]])


# ----------------------------------------------------------------------------- blending


def _random_quats(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_slerp_is_a_rotation_interpolation():
    q0, q1 = _random_quats(50, 1), _random_quats(50, 2)
    assert np.allclose(np.abs((slerp(q0, q1, 0.0) * q0).sum(1)), 1)
    assert np.allclose(np.abs((slerp(q0, q1, 1.0) * q1).sum(1)), 1)
    half = slerp(q0, q1, 0.5)
    assert np.allclose(np.linalg.norm(half, axis=1), 1)
    a = rotation_angle(np.swapaxes(quat_to_matrix(q0), -1, -2) @ quat_to_matrix(half))
    b = rotation_angle(np.swapaxes(quat_to_matrix(half), -1, -2) @ quat_to_matrix(q1))
    assert np.allclose(a, b, atol=1e-6)  # halfway along the arc (a per-channel lerp is not)


def test_crossfade_leaves_the_borders_on_the_original():
    n = 30
    angles = np.linspace(0, 1.0, n)
    original = np.stack([np.cos(angles / 2), np.sin(angles / 2), 0 * angles, 0 * angles], 1)
    new = -np.stack([np.cos(angles), 0 * angles, np.sin(angles), 0 * angles], 1)  # other hemisphere
    w = windows.border_weights(n, 6)
    assert w[0] < 0.06 and w[-1] < 0.06 and (w[7:-7] == 1).all()
    out = windows.crossfade(original, new, w)
    assert (out[0] * original[0]).sum() > 0.99 and (out[-1] * original[-1]).sum() > 0.99
    assert ((out[1:] * out[:-1]).sum(1) > 0.9).all()  # sign-continuous, small steps
    assert np.allclose(np.abs((out[10:20] * new[10:20]).sum(1)), 1)


def test_offset_fade_joins_the_anchor():
    anchor = np.array([1.0, 0.0, 0.0, 0.0])
    join = np.array([np.cos(0.3), 0.0, np.sin(0.3), 0.0])
    keys = np.tile(join, (10, 1))
    out = windows.fade_offset(anchor, np.concatenate([join[None], keys]), True, 4)
    steps = np.degrees(rotation_angle(np.swapaxes(quat_to_matrix(out[:-1]), -1, -2) @ quat_to_matrix(out[1:])))
    first = np.degrees(rotation_angle(quat_to_matrix(out[0]).T @ quat_to_matrix(anchor)))
    assert first < 0.6 * 2 * np.degrees(0.3) and steps.max() < 0.6 * 2 * np.degrees(0.3)
    assert np.allclose(np.abs(out[5:] @ join), 1)
    before = windows.fade_offset(anchor, np.concatenate([keys, join[None]]), False, 4)
    assert np.allclose(before, out[::-1])
    loc = windows.fade_values(np.zeros(3), np.concatenate([np.ones((1, 3)), np.ones((10, 3))]), True, 4)
    assert 0 < loc[0, 0] < 1 and np.allclose(loc[5:], 1)


@pytest.mark.parametrize("mode", ["XYZ", "ZXY", "YZX", "QUATERNION", "AXIS_ANGLE"])
def test_rotation_channels_round_trip(mode):
    q = _random_quats(20, 4)
    q *= np.sign(q[:, :1])
    start = {"QUATERNION": [1.0, 0, 0, 0], "AXIS_ANGLE": [0.0, 0, 1, 0]}.get(mode, [0.0, 0, 0])
    ref = from_quat(q[:1], mode, np.array(start))[0]
    values = from_quat(q, mode, ref)
    back = to_quat(values, mode)
    assert np.allclose(np.abs((back * q).sum(1)), 1, atol=1e-9)
    if mode not in ("QUATERNION", "AXIS_ANGLE"):
        m = quat_to_matrix(q)
        assert np.allclose(quat_to_matrix(euler_to_quat(euler_from_matrix(m, mode), mode)), m, atol=1e-9)


def test_euler_keys_continue_from_the_key_before():
    e = np.array([[0.0, 0.0, 3.1], [0.0, 0.0, 3.2], [0.0, 0.0, 3.3]])
    q = euler_to_quat(e, "XYZ")
    assert np.allclose(from_quat(q, "XYZ", np.array([0.0, 0.0, 3.0])), e)


def test_blend_rotation_range_and_extension():
    axis = np.array([0.0, 0.0, 1.0])
    n = 20
    original = np.zeros((n, 3))
    new = np.array([[np.cos(0.4), 0, 0, np.sin(0.4)]] * n)
    out = windows.blend_rotation("XYZ", original, new, "RANGE", 5, np.zeros(3))
    assert abs(out[0, 2]) < 0.06 and abs(out[-1, 2]) < 0.06 and np.allclose(out[8:12, 2], 0.8)
    ext = windows.blend_rotation("XYZ", None, np.concatenate([new[:1], new]), "AFTER", 5, np.zeros(3))
    assert 0 < ext[0, 2] < 0.4 and np.allclose(ext[6:, 2], 0.8)
    del axis


# ----------------------------------------------------------------------------- the model step


def test_model_window_on_the_reference(reference_dir):
    from momask_blender.jobs.model_cache import get_model

    model = get_model(str(reference_dir / "checkpoints"), str(reference_dir / "clip" / "ViT-B-32.pt"))
    import model_core

    window = windows.plan_range(0, 79, 30, 50, 20.0)
    joints = walking_turn(80)[: window.samples] @ _yaw(0.7).T + np.array([1.0, 0.0, -2.0])
    out = windows.model_window(model, window, joints, "a person jumps", seed=1,
                               settings=model_core.GenerationSettings(steps=2))
    assert out.shape == (window.frames, 22, 3) and np.isfinite(out).all()
    context = window.context_mask()
    placed_err = np.linalg.norm(out[context] - joints[: window.frames][context], axis=-1).mean()
    assert placed_err < np.linalg.norm(joints[: window.frames][context] - joints[0, 0], axis=-1).mean()
    extension = windows.plan_extension(0, 79, 1.0, "BEFORE", 20.0)
    out = windows.model_window(model, extension, walking_turn(80)[: extension.samples], "a person jumps",
                               settings=model_core.GenerationSettings(steps=2))
    assert out.shape == (extension.decoded, 22, 3)
    with pytest.raises(MomaskError, match="sampled frames"):
        windows.model_window(model, window, joints[:10], "a person jumps")


del axis_angle


def test_features_round_trip_lands_back_on_the_window():
    """process_file moves the window to the origin facing +Z; recover_from_ric gives frame i of
    the features back as frame i: put_back must return it onto the sampled window."""
    from model_core.motion import joints_to_features, recover_from_ric

    joints = walking_turn(41) @ _yaw(2.0).T + np.array([3.0, 0.2, -1.0])
    features, _ = joints_to_features(joints)
    recovered = recover_from_ric(features, 22)
    assert len(recovered) == 40
    context = np.ones(40, bool)
    context[12:28] = False
    placed = windows.put_back(recovered, recovered, joints[:40], context)
    assert np.abs(placed - joints[:40]).max() < 0.05  # only the uniform skeleton's bone lengths differ

"""The motion representation: parity with the official numbers, its invariances, its errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_core.motion import feature_dim, feature_layout, joints_to_features, recover_from_ric
from model_core.motion.quaternion import (
    cont6d_to_matrix,
    qbetween,
    qinv,
    qmul,
    qrot,
    quaternion_to_cont6d,
    quaternion_to_matrix,
    yaw_facing_z,
)
from model_core.motion.skeleton import (
    KIT,
    T2M,
    T2M_BONE_LENGTHS,
    T2M_UNIFORM_OFFSETS,
    SkeletonSpec,
    bone_vectors,
    forward_kinematics,
    inverse_kinematics,
    offsets_from_joints,
)
from tests.conftest import assert_close_rel

FAST = settings(max_examples=20, deadline=None)


def yaw(angle: np.ndarray) -> np.ndarray:
    """Quaternions turning by `angle` radians about +Y."""
    angle = np.asarray(angle, dtype=np.float64)
    zero = np.zeros_like(angle)
    return np.stack([np.cos(angle / 2), zero, np.sin(angle / 2), zero], axis=-1)


def synthetic_motion(spec: SkeletonSpec, offsets: np.ndarray, frames: int = 60, seed: int = 0,
                     turn: float = 1.0, amplitude: float = 0.25) -> np.ndarray:
    """A smooth made-up motion: joints swinging about random axes, the root walking and
    turning by at most `turn` radians either way."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / spec.fps
    axes = rng.normal(size=(spec.joints_num, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    angle = amplitude * rng.uniform(0.2, 1.0, spec.joints_num) * np.sin(
        2 * np.pi * rng.uniform(0.3, 1.5, spec.joints_num) * t + rng.uniform(0, 2 * np.pi, spec.joints_num))
    local = np.concatenate([np.cos(angle / 2)[..., None], np.sin(angle / 2)[..., None] * axes], axis=-1)
    heading = turn * np.sin(2 * np.pi * 0.2 * t[:, 0])
    local[:, 0] = yaw(heading)
    step = qrot(yaw(heading), np.array([0.0, 0.0, 0.05]))
    root = np.cumsum(step, axis=0) + np.array([0.3, 1.0, -0.2])
    root[:, 1] += 0.03 * np.sin(2 * np.pi * t[:, 0])
    return forward_kinematics(spec, local, root, offsets)


def first_yaw_wrap(global_positions: np.ndarray, spec: SkeletonSpec = T2M) -> int | None:
    """The first frame t whose yaw step to t+1 the official features encode with the wrong
    sign: the body frame's yaw quaternion (kept with w >= 0) crosses a half turn."""
    body = inverse_kinematics(spec, np.asarray(global_positions, np.float64), smooth_forward=True)[:, 0]
    step = qmul(body[1:], qinv(body[:-1]))
    wraps = np.flatnonzero(step[:, 0] < 0)
    return int(wraps[0]) if len(wraps) else None


# ---- parity with the official code -------------------------------------------------------------

def test_recover_from_ric_matches_official_on_the_source_motion(cases, reference_dir):
    motion = np.load(reference_dir / "source_motion.npy")
    joints = recover_from_ric(motion, 22)
    assert joints.dtype == motion.dtype
    assert_close_rel(joints, cases["source_joints"])


@pytest.mark.parametrize("i", [0, 1])
def test_recover_from_ric_matches_official_on_generated_features(cases, i):
    frames = 4 * int(cases["gen_lens_tokens"][i])
    assert_close_rel(recover_from_ric(cases["gen_features"][i, :frames], 22), cases[f"gen_joints_{i}"])


def test_recover_from_ric_takes_leading_batch_dims(cases):
    feats = cases["gen_features"].astype(np.float64)  # (2, 196, 263)
    batched = recover_from_ric(feats[None], 22)
    assert batched.shape == (1, 2, 196, 22, 3) and batched.dtype == np.float64
    for i in range(2):
        np.testing.assert_allclose(batched[0, i], recover_from_ric(feats[i], 22), rtol=0, atol=1e-12)


def test_uniform_offsets_are_the_official_target_skeleton(cases):
    assert_close_rel(T2M_UNIFORM_OFFSETS, cases["tgt_offsets"], tol=1e-6)
    assert_close_rel(offsets_from_joints(T2M, cases["source_joints"][0]), cases["tgt_offsets"], tol=1e-6)
    np.testing.assert_allclose(np.abs(T2M_UNIFORM_OFFSETS).sum(-1), T2M_BONE_LENGTHS)


def test_joints_to_features_matches_official_process_file(cases):
    features, global_positions = joints_to_features(cases["source_joints"], "t2m", 0.002)
    want = cases["process_file_features"]
    assert features.shape == want.shape == (198, 263)
    assert_close_rel(features[:, :-4], want[:, :-4])
    assert np.mean(features[:, -4:] == want[:, -4:]) >= 0.99
    assert_close_rel(global_positions, cases["process_file_global_positions"])


def test_round_trip_is_exact_until_the_official_yaw_wrap(cases):
    """recover_from_ric(features) gives back the global positions minus the last frame, but the
    official encoding flips the sign of the yaw step at the frame where the body has turned a
    half turn from its start (frame 143 of this motion), and every later frame inherits that
    error. The official features do the same, so this is kept for parity."""
    features, global_positions = joints_to_features(cases["source_joints"].astype(np.float64))
    recovered = recover_from_ric(features, 22)
    wrap = first_yaw_wrap(global_positions)
    assert wrap == 143
    np.testing.assert_allclose(recovered[: wrap + 1], global_positions[: wrap + 1], rtol=0, atol=1e-9)
    assert np.abs(recovered[wrap + 1:] - global_positions[wrap + 1:-1]).max() > 1e-2

    official = recover_from_ric(cases["process_file_features"], 22)
    reference = cases["process_file_global_positions"]
    np.testing.assert_allclose(official[: wrap + 1], reference[: wrap + 1], rtol=0, atol=1e-5)
    assert np.abs(official[wrap + 1:] - reference[wrap + 1:-1]).max() > 1e-2


# ---- properties on made-up motions -------------------------------------------------------------

@FAST
@given(seed=st.integers(0, 2**16), turn=st.floats(0.0, 2.0))
def test_round_trip_recovers_the_retargeted_positions(seed, turn):
    lengths = T2M_BONE_LENGTHS * np.random.default_rng(seed).uniform(0.7, 1.4, 22)
    joints = synthetic_motion(T2M, T2M.raw_offsets * lengths[:, None], seed=seed, turn=turn)
    features, global_positions = joints_to_features(joints)
    assert first_yaw_wrap(global_positions) is None
    np.testing.assert_allclose(recover_from_ric(features, 22), global_positions[:-1], rtol=0, atol=1e-9)


@FAST
@given(seed=st.integers(0, 2**16), angle=st.floats(-np.pi, np.pi),
       shift=st.tuples(*[st.floats(-5.0, 5.0)] * 3), scale=st.floats(0.2, 5.0))
def test_features_ignore_where_the_motion_starts_its_heading_and_its_size(seed, angle, shift, scale):
    """The retarget fixes bone lengths and the root path's scale, the floor and origin fix the
    position, the first frame's facing fixes the heading: a motion turned about +Y, moved and
    scaled gives the same features and the same global positions."""
    joints = synthetic_motion(T2M, T2M_UNIFORM_OFFSETS, frames=40, seed=seed)
    moved = scale * qrot(yaw(angle), joints) + np.array(shift)
    f0, g0 = joints_to_features(joints)
    f1, g1 = joints_to_features(moved)
    np.testing.assert_allclose(f1[:, :-4], f0[:, :-4], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(f1[:, -4:], f0[:, -4:])
    np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-9)


def test_global_positions_sit_on_the_uniform_skeleton_floor_and_origin():
    lengths = T2M_BONE_LENGTHS * np.random.default_rng(3).uniform(0.7, 1.4, 22)
    joints = synthetic_motion(T2M, T2M.raw_offsets * lengths[:, None], seed=3)
    _, g = joints_to_features(joints.astype(np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bone_vectors(T2M, g), axis=-1),
                               np.broadcast_to(T2M_BONE_LENGTHS, (len(g), 22)), atol=1e-6)
    assert abs(g[..., 1].min()) < 1e-6
    np.testing.assert_allclose(g[0, 0, [0, 2]], 0.0, atol=1e-6)


def test_feature_layout_covers_the_frame():
    for spec in (T2M, KIT):
        layout = feature_layout(spec.joints_num)
        assert spec.feature_dim == feature_dim(spec.joints_num) == layout["foot_contacts"].stop
    assert (T2M.feature_dim, KIT.feature_dim) == (263, 251)


def test_kit_motion_round_trips():
    offsets = KIT.raw_offsets * np.random.default_rng(1).uniform(0.1, 0.4, (21, 1))
    offsets[0] = 0.0
    joints = synthetic_motion(KIT, offsets, frames=30, seed=1)
    features, g = joints_to_features(joints, "kit", KIT.feet_threshold)
    assert features.shape == (29, 251) and g.shape == (30, 21, 3)
    assert first_yaw_wrap(g, KIT) is None
    np.testing.assert_allclose(recover_from_ric(features, 21), g[:-1], rtol=0, atol=1e-9)
    # With no KIT uniform skeleton carried, the motion keeps its own bone lengths.
    np.testing.assert_allclose(np.linalg.norm(bone_vectors(KIT, g), axis=-1),
                               np.broadcast_to(np.abs(offsets).sum(-1), (30, 21)), atol=1e-9)


def test_inverse_then_forward_kinematics_rebuilds_the_joints():
    joints = synthetic_motion(T2M, T2M_UNIFORM_OFFSETS, frames=20, seed=7, amplitude=0.8)
    local = inverse_kinematics(T2M, joints, smooth_forward=True)
    rebuilt = forward_kinematics(T2M, local, joints[:, 0], offsets_from_joints(T2M, joints[0]))
    np.testing.assert_allclose(rebuilt, joints, rtol=0, atol=1e-9)


# ---- quaternion helpers ------------------------------------------------------------------------

@FAST
@given(st.lists(st.floats(-1, 1), min_size=6, max_size=6))
def test_qbetween_turns_one_direction_onto_the_other(v):
    a, b = np.array(v[:3]), np.array(v[3:])
    if min(np.linalg.norm(a), np.linalg.norm(b)) < 1e-3:
        return
    got = qrot(qbetween(a, b), a / np.linalg.norm(a))
    np.testing.assert_allclose(got, b / np.linalg.norm(b), atol=1e-9)


def test_qbetween_of_opposite_directions_is_a_half_turn():
    a = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    q = qbetween(a, -a)
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(qrot(q, a), -a, atol=1e-12)


def test_yaw_facing_z_is_qbetween_for_horizontal_directions():
    angles = np.linspace(-3.1, 3.1, 25)
    forward = np.stack([np.sin(angles), np.zeros_like(angles), np.cos(angles)], -1)
    np.testing.assert_allclose(yaw_facing_z(forward), qbetween(forward, np.array([0.0, 0.0, 1.0])),
                               atol=1e-12)
    np.testing.assert_allclose(qrot(yaw_facing_z(np.array([0.0, 0.0, -1.0])), [0.0, 0.0, -1.0]),
                               [0.0, 0.0, 1.0], atol=1e-12)


def test_rotation_conversions_agree():
    q = np.random.default_rng(0).normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    m = quaternion_to_matrix(q)
    v = np.random.default_rng(1).normal(size=(50, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", m, v), qrot(q, v), atol=1e-12)
    np.testing.assert_allclose(cont6d_to_matrix(quaternion_to_cont6d(q)), m, atol=1e-12)
    np.testing.assert_allclose(qmul(q, qinv(q))[:, 0], 1.0, atol=1e-12)


# ---- bad input ---------------------------------------------------------------------------------

def test_non_finite_values_are_rejected_by_name():
    features = np.zeros((10, 263))
    features[3, 7] = np.nan
    with pytest.raises(ValueError, match="features contains 1 NaN/inf"):
        recover_from_ric(features, 22)
    joints = synthetic_motion(T2M, T2M_UNIFORM_OFFSETS, frames=5)
    joints[2, 4, 1] = np.inf
    with pytest.raises(ValueError, match="joints contains 1 NaN/inf"):
        joints_to_features(joints)


@pytest.mark.parametrize("shape, joints_num", [((10, 251), 22), ((263,), 22), ((10, 263), 21)])
def test_wrong_feature_shapes_name_expected_and_found(shape, joints_num):
    with pytest.raises(ValueError, match=rf"\(\.\.\., frames, {12 * joints_num - 1}\), got \({shape[0]},"):
        recover_from_ric(np.zeros(shape), joints_num)


@pytest.mark.parametrize("joints_num", [1, 0, 22.0, True])
def test_bad_joint_counts_are_rejected(joints_num):
    with pytest.raises(ValueError, match="joints_num"):
        recover_from_ric(np.zeros((4, 263)), joints_num)


@pytest.mark.parametrize("shape", [(10, 21, 3), (10, 22), (2, 10, 22, 3), (10, 22, 4)])
def test_wrong_joint_shapes_name_expected_and_found(shape):
    with pytest.raises(ValueError, match=r"\(frames >= 2, 22, 3\), got \("):
        joints_to_features(np.ones(shape))


def test_single_frame_and_degenerate_skeletons_are_rejected():
    joints = synthetic_motion(T2M, T2M_UNIFORM_OFFSETS, frames=5)
    with pytest.raises(ValueError, match="at least 2 frames"):
        joints_to_features(joints[:1])
    collapsed = joints.copy()
    collapsed[3, 7] = collapsed[3, 4]
    with pytest.raises(ValueError, match="joint 7 coincides with its parent 4 at frame 3"):
        joints_to_features(collapsed)
    with pytest.raises(ValueError, match="unknown dataset 'smpl'"):
        joints_to_features(joints, "smpl")
    with pytest.raises(ValueError, match=r"target_offsets for t2m must have shape \(22, 3\), got \(21, 3\)"):
        joints_to_features(joints, target_offsets=np.ones((21, 3)))


def test_gaussian_smooth_equals_scipys_nearest_mode_filter():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    from model_core.motion.skeleton import gaussian_smooth

    rng = np.random.default_rng(0)
    for frames in (1, 5, 81, 300):
        values = rng.normal(size=(frames, 3))
        want = scipy_ndimage.gaussian_filter1d(values, 20.0, axis=0, mode="nearest")
        np.testing.assert_allclose(gaussian_smooth(values, 20.0), want, rtol=0, atol=1e-12)

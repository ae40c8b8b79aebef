"""HumanML3D motion features <-> joint positions, numerically as the official code.

A frame of features (263 values for t2m's 22 joints, 251 for KIT's 21) holds, in order:
root yaw velocity (1), root XZ velocity in the body frame (2), root height (1), joint
positions relative to the root, in the body frame ("ric", (J-1)*3), 6D local rotations
((J-1)*6), joint velocities in the body frame (J*3) and 4 foot contacts. `recover_from_ric`
turns features into joints (the model's output path); `joints_to_features` is the official
`process_file`, turning joints into features (the path that lets an animation be encoded and
edited).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .quaternion import qinv, qmul, qrot, quaternion_to_cont6d, yaw_facing_z
from .skeleton import (
    T2M,
    T2M_UNIFORM_OFFSETS,
    SkeletonSpec,
    get_spec,
    inverse_kinematics,
    offsets_from_joints,
    rescale_bones,
)


def feature_dim(joints_num: int) -> int:
    """Width of a feature frame for a skeleton of `joints_num` joints."""
    return 12 * joints_num - 1


def feature_layout(joints_num: int) -> dict[str, slice]:
    """Where each part of a feature frame lives."""
    widths = {
        "root_rot_velocity": 1,
        "root_linear_velocity": 2,
        "root_y": 1,
        "ric": (joints_num - 1) * 3,
        "rotations": (joints_num - 1) * 6,
        "local_velocity": joints_num * 3,
        "foot_contacts": 4,
    }
    layout, start = {}, 0
    for name, width in widths.items():
        layout[name] = slice(start, start + width)
        start += width
    return layout


def _float_array(x, name: str) -> np.ndarray:
    """As float32 or float64 (other types become float64), rejecting NaN and inf by name."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelError(f"{name} contains {int(bad.sum())} NaN/inf values (first at index {where})")
    return a


def recover_from_ric(features: np.ndarray, joints_num: int) -> np.ndarray:
    """Joint positions (..., T, joints_num, 3) from features (..., T, 12*joints_num - 1).

    The root yaw is the running sum of the yaw velocities (the first frame faces +Z), the root
    XZ path the running sum of the body-frame velocities turned back to the world, the root
    height is read directly, and the other joints are the ric positions turned back and moved
    to the root. The yaw is kept as a half angle, as officially. Only the first 4 + (J-1)*3
    columns are used; the rest are still checked to be finite. Returns float32 for float32
    input, float64 otherwise.
    """
    if isinstance(joints_num, bool) or not isinstance(joints_num, int | np.integer) or joints_num < 2:
        raise ModelError(f"joints_num must be an integer >= 2, got {joints_num!r}")
    data = _float_array(features, "features")
    dim = feature_dim(joints_num)
    if data.ndim < 2 or data.shape[-1] != dim:
        raise ModelError(f"features for {joints_num} joints must have shape (..., frames, {dim}), "
                         f"got {data.shape}")
    out_dtype = data.dtype
    data = data.astype(np.float64, copy=False)

    half_yaw = np.zeros(data.shape[:-1])
    half_yaw[..., 1:] = np.cumsum(data[..., :-1, 0], axis=-1)
    zero = np.zeros_like(half_yaw)
    to_world = qinv(np.stack([np.cos(half_yaw), zero, np.sin(half_yaw), zero], axis=-1))

    step = np.zeros(data.shape[:-1] + (3,))
    step[..., 1:, 0] = data[..., :-1, 1]
    step[..., 1:, 2] = data[..., :-1, 2]
    root = np.cumsum(qrot(to_world, step), axis=-2)
    root[..., 1] = data[..., 3]

    ric = data[..., 4:4 + (joints_num - 1) * 3].reshape(data.shape[:-1] + (joints_num - 1, 3))
    others = qrot(to_world[..., None, :], ric)
    others[..., 0] += root[..., None, 0]
    others[..., 2] += root[..., None, 2]
    return np.concatenate([root[..., None, :], others], axis=-2).astype(out_dtype, copy=False)


def _face_z_at_origin(spec: SkeletonSpec, positions: np.ndarray) -> np.ndarray:
    """Put the motion on the floor, its first root above the origin, its first frame facing +Z."""
    positions = positions.copy()
    positions[..., 1] -= positions[..., 1].min()
    positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])

    r_hip, l_hip, sdr_r, sdr_l = spec.face_joint_indx
    first = positions[0]
    across = (first[r_hip] - first[l_hip]) + (first[sdr_r] - first[sdr_l])
    forward = np.cross([0.0, 1.0, 0.0], across)
    if not np.linalg.norm(forward) > 0.0:
        raise ModelError(f"no facing direction on the first frame: hips and shoulders (joints "
                         f"{spec.face_joint_indx}) give a vertical or zero across vector")
    return qrot(yaw_facing_z(forward), positions)


def _foot_contacts(spec: SkeletonSpec, positions: np.ndarray, threshold: float) -> np.ndarray:
    """(T-1, 4) contacts, left pair then right pair: squared speed per frame below threshold."""
    feet = list(spec.fid_l) + list(spec.fid_r)
    speed2 = ((positions[1:, feet] - positions[:-1, feet]) ** 2).sum(-1)
    return (speed2 < threshold).astype(np.float64)


def _checked_motion(spec, positions: np.ndarray) -> np.ndarray:
    expected = f"(frames >= 2, {spec.joints_num}, 3)"
    if positions.ndim != 3 or positions.shape[1:] != (spec.joints_num, 3):
        raise ModelError(f"joints for {spec.name} must have shape {expected}, got {positions.shape}")
    if positions.shape[0] < 2:
        raise ModelError(f"joints_to_features needs at least 2 frames {expected}, got {positions.shape}")
    return positions


def _checked_offsets(spec, target_offsets, first_frame: np.ndarray) -> np.ndarray:
    """The bone offsets to rescale to: the given ones, T2M's uniform skeleton, or the first frame's."""
    if target_offsets is None:
        target_offsets = T2M_UNIFORM_OFFSETS if spec is T2M else offsets_from_joints(spec, first_frame)
    target = _float_array(target_offsets, "target_offsets")
    if target.shape != (spec.joints_num, 3):
        raise ModelError(f"target_offsets for {spec.name} must have shape ({spec.joints_num}, 3), "
                         f"got {target.shape}")
    return target


def joints_to_features(
    joints: np.ndarray,
    dataset: str = "t2m",
    feet_threshold: float = 0.002,
    *,
    target_offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (T-1, 12*J-1) and retargeted global positions (T, J, 3) from joints (T, J, 3).

    The official `process_file`: bones rescaled to the dataset's uniform skeleton, feet on the
    floor, the first root above the origin, the first frame facing +Z (these are the returned
    global positions); then foot contacts, the body frame from the smoothed facing direction,
    and the features of every frame but the last. Input is Y-up metres at the dataset's fps.

    `target_offsets` (J, 3) defaults to `T2M_UNIFORM_OFFSETS` for t2m. KIT's uniform skeleton
    is not carried, so for KIT it defaults to the motion's own first-frame bones (no rescaling).
    The official KIT preprocessing used `feet_threshold=0.05` (`KIT.feet_threshold`).
    Returns float32 for float32 input, float64 otherwise.
    """
    spec = get_spec(dataset)
    positions = _float_array(joints, "joints")
    out_dtype = positions.dtype
    positions = _checked_motion(spec, positions).astype(np.float64)
    target = _checked_offsets(spec, target_offsets, positions[0])

    positions = _face_z_at_origin(spec, rescale_bones(spec, positions, target))
    contacts = _foot_contacts(spec, positions, feet_threshold)

    local_rot = inverse_kinematics(spec, positions, smooth_forward=True)  # (T, J, 4)
    body = local_rot[:, 0]  # world -> body-frame yaw, identity on frame 0
    yaw_velocity = qmul(body[1:], qinv(body[:-1]))
    root_velocity = qrot(body[1:], positions[1:, 0] - positions[:-1, 0])

    ric = positions - positions[:, :1] * np.array([1.0, 0.0, 1.0])
    ric = qrot(body[:, None], ric)
    local_velocity = qrot(body[:-1, None], positions[1:] - positions[:-1])

    frames = len(positions) - 1
    features = np.concatenate(
        [
            np.arcsin(np.clip(yaw_velocity[:, 2:3], -1.0, 1.0)),
            root_velocity[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(frames, -1),
            quaternion_to_cont6d(local_rot[:-1, 1:]).reshape(frames, -1),
            local_velocity.reshape(frames, -1),
            contacts,
        ],
        axis=-1,
    )
    return features.astype(out_dtype, copy=False), positions.astype(out_dtype, copy=False)

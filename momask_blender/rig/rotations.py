"""Small rotation helpers on NumPy arrays: matrices are (..., 3, 3), quaternions (..., 4) as w, x, y, z.

The basic matrix ones (normalize, perpendicular, axis_angle, swing: the shortest arc) are
`model_core.motion.rotations`, which the BVH writer shares; these are the rig's own."""
from __future__ import annotations

import numpy as np

from model_core.motion.quaternion import qmul, quaternion_to_matrix
from model_core.motion.rotations import normalize, perpendicular


def signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle (radians) turning `a` into `b` about unit `axis`, both taken perpendicular to it."""
    a = perpendicular(a, axis)
    b = perpendicular(b, axis)
    return np.arctan2((np.cross(a, b) * axis).sum(-1), (a * b).sum(-1))


def frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frames whose columns are primary, secondary made perpendicular, and their cross."""
    p = normalize(primary)
    s = normalize(perpendicular(secondary, p))
    return np.stack([p, s, np.cross(p, s)], axis=-1)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Quaternions (w, x, y, z) of rotation matrices, w >= 0 (Shepperd's method, vectorised)."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    pick = diag.argmax(1)
    q = np.empty((len(m), 4))
    for k in range(4):
        i = pick == k
        if not i.any():
            continue
        r = m[i]
        if k == 0:
            s = 2.0 * np.sqrt(1.0 + tr[i])
            q[i] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                             (r[:, 1, 0] - r[:, 0, 1]) / s], 1)
        elif k == 1:
            s = 2.0 * np.sqrt(max_1(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]))
            q[i] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                             (r[:, 0, 2] + r[:, 2, 0]) / s], 1)
        elif k == 2:
            s = 2.0 * np.sqrt(max_1(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]))
            q[i] = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s,
                             (r[:, 1, 2] + r[:, 2, 1]) / s], 1)
        else:
            s = 2.0 * np.sqrt(max_1(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]))
            q[i] = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                             (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], 1)
    q = normalize(q)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(shape + (4,))


def max_1(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 1e-12)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (w, x, y, z), not necessarily unit (model_core's)."""
    return quaternion_to_matrix(np.asarray(q, dtype=np.float64))


def continuous_quats(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` (time) so neighbouring quaternions are in the same hemisphere."""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = np.cumsum(dots < 0, axis=0) % 2
    q[1:] *= np.where(flips[..., None] == 1, -1.0, 1.0)
    return np.moveaxis(q, 0, axis)


def rotation_angle(m: np.ndarray) -> np.ndarray:
    """Angle (radians) of rotation matrices."""
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def axis_and_angle(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit axes (..., 3), angles (...) in radians) of rotation matrices; +X where there is no turn."""
    axis = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    some = norm > 1e-12
    axis = np.where(some, axis / np.where(some, norm, 1.0), np.array([1.0, 0.0, 0.0]))
    return axis, rotation_angle(m)


def polar_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation part of (..., 3, 3) matrices that may carry scale (polar decomposition)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))  # -1 where the orthogonal part mirrors: flip its last axis
    u = u * np.concatenate([np.ones(d.shape + (2,), u.dtype), d[..., None]], axis=-1)[..., None, :]  # keeps u's dtype
    return u @ vt


def euler_from_matrix(m: np.ndarray, order: str) -> np.ndarray:
    """Euler angles (..., 3) as x, y, z values for Blender's rotation `order` (e.g. 'XYZ').

    Blender's 'XYZ' means X is applied first: R = Rz @ Ry @ Rx.
    """
    idx = {"X": 0, "Y": 1, "Z": 2}
    i, j, k = (idx[c] for c in order)
    parity = 1.0 if (j - i) % 3 == 1 else -1.0
    # R = R_k R_j R_i; the standard decomposition for that product.
    sy = -parity * m[..., k, i]
    b = np.arcsin(np.clip(sy, -1.0, 1.0))
    a = np.arctan2(parity * m[..., k, j], m[..., k, k])
    c = np.arctan2(parity * m[..., j, i], m[..., i, i])
    out = np.empty(m.shape[:-2] + (3,))
    out[..., i], out[..., j], out[..., k] = a, b, c
    return out


# ----------------------------------------------------------------------------- a bone's rotation channels


def slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation (..., 4) from q0 to q1 by w (...), along the shorter arc."""
    q0, q1 = normalize(np.asarray(q0, np.float64)), normalize(np.asarray(q1, np.float64))
    dot = (q0 * q1).sum(-1)
    q1 = np.where((dot < 0)[..., None], -q1, q1)
    dot = np.abs(dot)
    w = np.asarray(w, np.float64)[..., None]
    theta = np.arccos(np.clip(dot, -1.0, 1.0))[..., None]
    sin = np.sin(theta)
    small = sin < 1e-6
    a = np.where(small, 1 - w, np.sin((1 - w) * theta) / np.where(small, 1.0, sin))
    b = np.where(small, w, np.sin(w * theta) / np.where(small, 1.0, sin))
    return normalize(a * q0 + b * q1)


def continuous_from(q: np.ndarray, index: int) -> np.ndarray:
    """Sign-continuous quaternions keeping the sign of q[index]."""
    out = continuous_quats(q, axis=0)
    if (out[index] * q[index]).sum() < 0:
        out = -out
    return out


def euler_to_quat(e: np.ndarray, order: str) -> np.ndarray:
    """Quaternions (..., 4) of Blender euler angles (..., 3) in `order` (R = R_k R_j R_i)."""
    e = np.asarray(e, np.float64)
    out = np.zeros(e.shape[:-1] + (4,))
    out[..., 0] = 1.0
    for axis in order:  # the first letter is applied first
        i = "XYZ".index(axis)
        h = e[..., i] / 2
        q = np.zeros(e.shape[:-1] + (4,))
        q[..., 0] = np.cos(h)
        q[..., 1 + i] = np.sin(h)
        out = qmul(q, out)
    return out


def to_quat(values: np.ndarray, mode: str) -> np.ndarray:
    """Quaternions (K, 4) from a bone's rotation channel values (K, 3|4) in its rotation mode."""
    values = np.asarray(values, np.float64)
    if mode == "QUATERNION":
        return normalize(values)
    if mode == "AXIS_ANGLE":
        axis = normalize(values[:, 1:])
        h = values[:, :1] / 2
        q = np.concatenate([np.cos(h), np.sin(h) * axis], axis=1)
        q[np.linalg.norm(values[:, 1:], axis=1) < 1e-12] = (1.0, 0.0, 0.0, 0.0)
        return q
    return euler_to_quat(values, mode)


def from_quat(q: np.ndarray, mode: str, reference: np.ndarray | None = None) -> np.ndarray:
    """Channel values (K, 3|4) of quaternions (K, 4) in a bone's rotation mode, sign-continuous and
    euler turns unwrapped along the keys. With `reference` (C,), the channel values just before the
    first key, they continue from it (sign, axis and euler turns kept close to it)."""
    q = np.asarray(q, np.float64)
    if reference is None:
        q = continuous_quats(q, axis=0)
    else:
        reference = np.asarray(reference, np.float64)
        q = continuous_from(np.concatenate([to_quat(reference[None], mode), q]), 0)[1:]
    if mode == "QUATERNION":
        return q
    if mode == "AXIS_ANGLE":
        s = np.linalg.norm(q[:, 1:], axis=1)
        angle = 2 * np.arctan2(s, q[:, 0])
        axis = q[:, 1:] / np.maximum(s, 1e-12)[:, None]
        still = (0.0, 1.0, 0.0) if reference is None or not np.linalg.norm(reference[1:]) > 0 \
            else normalize(reference[1:])
        axis[s < 1e-9] = still
        return np.concatenate([angle[:, None], axis], axis=1)
    e = euler_from_matrix(quat_to_matrix(q), mode)
    if reference is not None:
        e = np.concatenate([reference[None], e])
    return np.unwrap(e, axis=0)[0 if reference is None else 1:]

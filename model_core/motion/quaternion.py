"""Quaternion helpers for the HumanML3D motion representation.

Quaternions are NumPy arrays of shape (..., 4) stored as (w, x, y, z), the order the official
code uses. Every function broadcasts over leading dimensions. The official code runs these in
float32 through torch; here they stay in the caller's float precision (float64 in the motion
pipeline), which keeps the results within float32 rounding of the official ones.
"""
from __future__ import annotations

import numpy as np

# Below this squared norm a cross product is treated as zero (parallel or antiparallel vectors).
_PARALLEL_EPS = 1e-20


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate, which is the inverse for the unit quaternions used throughout."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qnormalize(q: np.ndarray) -> np.ndarray:
    """Scale to unit length."""
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r: rotating by the result applies r first, then q."""
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        axis=-1,
    )


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); the shapes broadcast."""
    w = q[..., :1]
    axis = q[..., 1:]
    t = 2.0 * np.cross(axis, v)
    return v + w * t + np.cross(axis, t)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The shortest-arc unit quaternion turning direction v0 onto direction v1.

    Same formula as the official `qbetween` (half-way quaternion, w >= 0). Where the official
    one returns NaN, for exactly opposite vectors, this returns a half turn about an axis
    perpendicular to v0 instead, so a degenerate frame cannot poison a whole sequence.
    """
    v0, v1 = np.broadcast_arrays(v0, v1)
    axis = np.cross(v0, v1)
    w = np.sqrt((v0**2).sum(-1, keepdims=True) * (v1**2).sum(-1, keepdims=True)) + (v0 * v1).sum(
        -1, keepdims=True
    )
    q = np.concatenate([w, axis], axis=-1)
    opposite = (q**2).sum(-1) < _PARALLEL_EPS
    if np.any(opposite):
        a = v0[opposite]
        # Any axis perpendicular to v0 gives a half turn onto -v0; take one off the x axis,
        # or off the y axis when v0 lies along x.
        helper = np.where(np.abs(a[:, :1]) < 0.9 * np.linalg.norm(a, axis=-1, keepdims=True),
                          [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        perp = np.cross(a, helper)
        q = q.copy()
        q[opposite] = np.concatenate([np.zeros_like(perp[:, :1]), perp], axis=-1)
    return qnormalize(q)


def yaw_facing_z(forward: np.ndarray) -> np.ndarray:
    """The rotation about +Y that turns a horizontal `forward` (..., 3) to face +Z.

    Equal to `qbetween(forward, +Z)` for horizontal vectors (w >= 0), written with atan2 so
    that a body facing exactly -Z still gets a yaw (a half turn about Y) rather than NaN.
    """
    half = -0.5 * np.arctan2(forward[..., 0], forward[..., 2])
    zero = np.zeros_like(half)
    return np.stack([np.cos(half), zero, np.sin(half), zero], axis=-1)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3); q need not be exactly unit (it is rescaled, as officially)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        (
            1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
            s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
            s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quaternion_to_cont6d(q: np.ndarray) -> np.ndarray:
    """The continuous 6D rotation (Zhou et al. 2019): the matrix's first two columns, concatenated."""
    m = quaternion_to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Back from 6D to rotation matrices by Gram-Schmidt, as the official decoder path does."""
    x = d6[..., 0:3] / np.linalg.norm(d6[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, d6[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)

"""Small rotation helpers on NumPy arrays: matrices are (..., 3, 3), quaternions (..., 4) as w, x, y, z."""
from __future__ import annotations

import numpy as np

EPS = 1e-9


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, EPS)


def perpendicular(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The part of `v` perpendicular to the unit vector `axis` (not normalised)."""
    return v - (v * axis).sum(-1, keepdims=True) * axis


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about unit `axis` (..., 3) by `angle` (...) radians (Rodrigues)."""
    axis = normalize(axis)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    m = np.empty(axis.shape[:-1] + (3, 3))
    m[..., 0, 0] = c + x * x * t
    m[..., 0, 1] = x * y * t - z * s
    m[..., 0, 2] = x * z * t + y * s
    m[..., 1, 0] = y * x * t + z * s
    m[..., 1, 1] = c + y * y * t
    m[..., 1, 2] = y * z * t - x * s
    m[..., 2, 0] = z * x * t - y * s
    m[..., 2, 1] = z * y * t + x * s
    m[..., 2, 2] = c + z * z * t
    return m


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vectors `a` to `b` (..., 3) → (..., 3, 3).

    Opposite vectors turn half a turn about an axis perpendicular to `a`.
    """
    a, b = np.broadcast_arrays(normalize(a), normalize(b))
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.clip((a * b).sum(-1), -1.0, 1.0)
    angle = np.arctan2(sin, cos)
    # Where a and b are (anti)parallel the cross product vanishes: pick any perpendicular axis.
    fallback = np.cross(a, np.array([1.0, 0.0, 0.0]))
    weak = np.linalg.norm(fallback, axis=-1) < 1e-3
    fallback[weak] = np.cross(a[weak], np.array([0.0, 1.0, 0.0]))
    axis = np.where((sin < 1e-9)[..., None], fallback, axis)
    return axis_angle(axis, angle)


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
    q = normalize(np.asarray(q, dtype=np.float64))
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - z * w)
    m[..., 0, 2] = 2 * (x * z + y * w)
    m[..., 1, 0] = 2 * (x * y + z * w)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - x * w)
    m[..., 2, 0] = 2 * (x * z - y * w)
    m[..., 2, 1] = 2 * (y * z + x * w)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


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


def polar_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation part of a 3x3 matrix that may carry scale."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


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


def unwrap_euler(e: np.ndarray, axis: int = 0) -> np.ndarray:
    """Remove 2π jumps per channel along time."""
    return np.unwrap(e, axis=axis)

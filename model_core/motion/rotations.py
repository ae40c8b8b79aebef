"""Rotation matrices on NumPy arrays, shared by the BVH writer and the add-on's rig math.

Matrices are (..., 3, 3) and act on column vectors; every function broadcasts over leading
dimensions. (The motion features keep their own quaternion math in `quaternion`, written as the
official code computes it.)
"""
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
    """The shortest-arc rotation taking the direction of `a` to that of `b` (..., 3) → (..., 3, 3).

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

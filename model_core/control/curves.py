"""Smooth curves through correction values known at a few frames (NumPy only).

A constraint says what a correction must be at its frame; between and around constrained frames
the correction has to change as gently as possible, because its acceleration is added to the
motion's. A clamped cubic spline is the interpolant with the least squared second derivative, so
it is what both curve kinds here use:

- `held_curve`: through every anchor, flat beyond the first and last (a root offset or a turn that
  must persist: the motion after a waypoint continues from where the waypoint put it);
- `local_curve`: through every anchor, back to zero `width` frames away from them (a change of
  pose around a key, which should leave the rest of the motion as it was).

Two small helpers over frames sit here too, for this package and the add-on's rig math alike:
`runs` (the stretches of a mask) and `smoothstep` (the ease that the add-on's foot locks, reach
turns and range-edit borders blend with).
"""
from __future__ import annotations

import numpy as np


def clamped_spline(times: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cubic spline through (times, values (A, ...)) with zero slope at both ends, evaluated at
    `query` (clamped to the anchors' range, so the curve is flat outside it). Times ascend."""
    t = np.asarray(times, np.float64)
    v = np.asarray(values, np.float64)
    q = np.clip(np.asarray(query, np.float64), t[0], t[-1])
    if len(t) == 1:
        return np.broadcast_to(v[0], q.shape + v.shape[1:]).copy()
    slopes = _clamped_slopes(t, v)
    seg = np.clip(np.searchsorted(t, q, side="right") - 1, 0, len(t) - 2)
    h = (t[seg + 1] - t[seg])
    s = ((q - t[seg]) / h).reshape(q.shape + (1,) * (v.ndim - 1))
    hh = h.reshape(h.shape + (1,) * (v.ndim - 1))
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * v[seg] + h10 * hh * slopes[seg] + h01 * v[seg + 1] + h11 * hh * slopes[seg + 1]


def _clamped_slopes(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Slopes at the anchors of the C2 spline with zero end slopes (tridiagonal solve, Thomas)."""
    n = len(t)
    h = np.diff(t)
    slopes = np.zeros_like(v)
    if n == 2:
        return slopes
    shape = (-1,) + (1,) * (v.ndim - 1)
    delta = np.diff(v, axis=0) / h.reshape(shape)
    # interior rows i = 1..n-2: h[i] m[i-1] + 2 (h[i-1] + h[i]) m[i] + h[i-1] m[i+1] = 3 (h[i] d[i-1] + h[i-1] d[i])
    lower, diag, upper = h[1:], 2 * (h[:-1] + h[1:]), h[:-1]
    rhs = 3 * (h[1:].reshape(shape) * delta[:-1] + h[:-1].reshape(shape) * delta[1:])
    m = n - 2
    c, d = np.zeros(m), np.zeros_like(rhs)
    for i in range(m):
        denom = diag[i] - (lower[i] * c[i - 1] if i else 0.0)
        c[i] = upper[i] / denom if i < m - 1 else 0.0
        d[i] = (rhs[i] - (lower[i] * d[i - 1] if i else 0.0)) / denom
    for i in range(m - 2, -1, -1):
        d[i] = d[i] - c[i] * d[i + 1]
    slopes[1:-1] = d
    return slopes


def held_curve(times, values, frames: int) -> np.ndarray:
    """Values at frames 0..frames-1 of the clamped spline through the anchors, flat outside them.

    Anchors at the same time must carry the same value (the caller merges them)."""
    t, v = _sorted(times, values)
    if len(t) == 0:
        return np.zeros((frames,) + v.shape[1:])
    return clamped_spline(t, v, np.arange(frames))


def local_curve(times, values, frames: int, width: float, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Values at frames 0..frames-1 through the anchors, zero `width` frames away from them.

    Anchors closer than 2 × width share one spline (the correction never returns to zero
    between them); each group starts and ends on a zero anchor with zero slope, so the curve
    is C1 where it meets the untouched motion. `bounds` (lo, hi): zero at or beyond these
    frames (a range edit's borders), so the correction stays inside.
    """
    t, v = _sorted(times, values)
    out = np.zeros((frames,) + v.shape[1:])
    if len(t) == 0:
        return out
    lo, hi = bounds if bounds is not None else (-np.inf, np.inf)
    starts = [0] + [i + 1 for i in range(len(t) - 1) if t[i + 1] - t[i] > 2 * width]
    ends = starts[1:] + [len(t)]
    zero = np.zeros((1,) + v.shape[1:])
    for a, b in zip(starts, ends, strict=True):
        left, right = max(t[a] - width, lo), min(t[b - 1] + width, hi)
        gt = np.concatenate([[left], t[a:b], [right]])
        gv = np.concatenate([zero, v[a:b], zero])
        keep = np.concatenate([[True], np.diff(gt) > 0])  # an anchor on a border: the border wins
        gt, gv = gt[keep], gv[keep]
        first, last = int(np.ceil(left)), int(np.floor(right))
        span = np.arange(max(first, 0), min(last, frames - 1) + 1)
        if len(span):
            out[span] = clamped_spline(gt, gv, span)
    return out


def _sorted(times, values) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, np.float64).reshape(-1)
    v = np.asarray(values, np.float64)
    v = v.reshape((len(t),) + v.shape[1:]) if v.size else np.zeros((0,) + v.shape[1:])
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous True runs of a 1-D mask as (start, end) pairs, end exclusive."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def smoothstep(x):
    """3x² - 2x³ of `x` clipped to [0, 1]: from 0 to 1 with zero slope at both ends (C1 easing)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)

"""Foot contacts from the source joints, and a two-bone leg IK that pins planted feet."""
from __future__ import annotations

import numpy as np

from .plan import RigPlan, forward_kinematics
from .rotations import normalize, perpendicular, swing

CONTACT_SPEED = 0.3      # m/s: an ankle slower than this may be planted
CONTACT_HEIGHT = 0.05    # m above that joint's own lowest height in the motion
MIN_CONTACT_S = 0.1      # shorter contacts are ignored (s)
BLEND_S = 0.15           # time to ease in and out of a lock (s)
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))  # hip, knee, ankle, toe per side


def detect_contacts(J: np.ndarray, fps: float) -> np.ndarray:
    """(F, 2) bool: left / right heel planted, from the ankle's height and speed (Z up, metres).

    Only the ankle counts: on tiptoe the heel lifts, and pinning the ankle then would be wrong.
    """
    F = len(J)
    out = np.zeros((F, 2), dtype=bool)
    if F < 2:
        return out
    for side, (_, _, ankle, _) in enumerate(LEGS):
        planted = np.zeros(F, dtype=bool)
        for j in (ankle,):
            p = J[:, j]
            v = np.zeros(F)
            step = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
            v[1:-1] = np.minimum(step[:-1], step[1:])
            v[0], v[-1] = step[0], step[-1]
            floor = np.percentile(p[:, 2], 5)
            planted |= (v < CONTACT_SPEED) & (p[:, 2] < floor + CONTACT_HEIGHT)
        out[:, side] = _drop_short(planted, max(2, int(round(MIN_CONTACT_S * fps))))
    return out


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for s, e in spans(mask):
        if e - s + 1 < min_len:
            out[s:e + 1] = False
    return out


def spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True."""
    m = np.concatenate([[False], mask, [False]]).astype(int)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1, strict=True))


def lock_targets(positions: np.ndarray, planted: np.ndarray, blend: int) -> np.ndarray:
    """Where each frame's ankle should be: fixed during a contact, eased in and out around it."""
    F = len(positions)
    target = positions.copy()
    weight = np.zeros(F)
    pinned = np.zeros((F, 3))
    for s, e in spans(planted):
        pin = positions[s:e + 1].mean(axis=0)
        for f in range(max(0, s - blend), min(F, e + blend + 1)):
            if s <= f <= e:
                w = 1.0
            else:
                gap = s - f if f < s else f - e
                x = 1.0 - gap / (blend + 1)
                w = x * x * (3 - 2 * x)
            if w > weight[f]:
                weight[f], pinned[f] = w, pin
    target += weight[:, None] * (pinned - positions)
    return target


def two_bone_ik(hip, knee, ankle, target, upper: float, lower: float):
    """New knee positions (F, 3) so that the chain reaches `target`, in the current bend plane."""
    to_target = target - hip
    dist = np.linalg.norm(to_target, axis=-1)
    dist = np.clip(dist, abs(upper - lower) + 1e-6, (upper + lower) * 0.9999)
    u = normalize(to_target)
    pole = perpendicular(knee - hip, u)
    weak = np.linalg.norm(pole, axis=-1) < 1e-6
    pole = normalize(pole)
    if weak.any():
        pole[weak] = normalize(perpendicular(knee[weak] - ankle[weak], u[weak]))
    cos_a = np.clip((upper ** 2 + dist ** 2 - lower ** 2) / (2 * upper * dist), -1, 1)
    sin_a = np.sqrt(1 - cos_a ** 2)
    return hip + upper * (cos_a[:, None] * u + sin_a[:, None] * pole), hip + dist[:, None] * u


def lock_feet(plan: RigPlan, Q: np.ndarray, heads: np.ndarray, contacts: np.ndarray, fps: float,
              offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World deltas with thighs and shins turned so planted ankles stay put, and the root offset
    lowered where a pinned ankle would be out of the leg's reach."""
    jb = plan.joint_bone
    Q = Q.copy()
    blend = max(1, int(round(BLEND_S * fps)))
    legs = []
    for side, (hip, knee, ankle, _) in enumerate(LEGS):
        if not (hip in jb and knee in jb and ankle in jb) or not contacts[:, side].any():
            continue
        h, k, a = jb[hip], jb[knee], jb[ankle]
        upper = float(np.linalg.norm(plan.heads[k] - plan.heads[h]))
        lower = float(np.linalg.norm(plan.heads[a] - plan.heads[k]))
        legs.append((h, k, a, upper, lower, lock_targets(heads[:, a], contacts[:, side], blend)))
    if not legs:
        return Q, offset
    # Bring the hips towards pins that the straight leg can't reach.
    shift = np.zeros_like(offset)
    for h, _, _, upper, lower, target in legs:
        reach = target - heads[:, h]
        dist = np.linalg.norm(reach, axis=-1)
        need = np.maximum(dist - REACH * (upper + lower), 0.0)
        move = normalize(reach) * need[:, None]
        bigger = np.linalg.norm(move, axis=-1) > np.linalg.norm(shift, axis=-1)
        shift[bigger] = move[bigger]
    if shift.any():
        shift = _smooth_max(shift)
        offset = offset + shift
        heads = forward_kinematics(plan, Q, offset)
    for h, k, a, upper, lower, target in legs:
        target = _within_turn(heads[:, h], heads[:, k], heads[:, a], target, upper, lower)
        new_knee, reached = two_bone_ik(heads[:, h], heads[:, k], heads[:, a], target, upper, lower)
        turn_upper = swing(heads[:, k] - heads[:, h], new_knee - heads[:, h])
        turn_lower = swing(heads[:, a] - heads[:, k], reached - new_knee)
        # Turn the thigh chain and the shin chain; bones below the ankle keep their world turn.
        for b in _subtree(plan, h, stop=k):
            Q[:, b] = turn_upper @ Q[:, b]
        for b in _subtree(plan, k, stop=a):
            Q[:, b] = turn_lower @ Q[:, b]
    return Q, offset


REACH = 0.998  # the most a locked leg is stretched, of its full length
MAX_LEG_TURN = 9.5  # degrees: the most a lock may turn a thigh or shin away from the motion


def _segment_turns(hip, knee, ankle, target, upper: float, lower: float) -> np.ndarray:
    """Per frame, the larger angle (degrees) by which reaching `target` turns the thigh or shin."""
    new_knee, reached = two_bone_ik(hip, knee, ankle, target, upper, lower)

    def angle(a, b):
        cos = (normalize(a) * normalize(b)).sum(-1)
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    return np.maximum(angle(knee - hip, new_knee - hip), angle(ankle - knee, reached - new_knee))


def _within_turn(hip, knee, ankle, target, upper: float, lower: float, steps: int = 12) -> np.ndarray:
    """`target` pulled back towards the ankle's own path where reaching it would turn a leg segment
    by more than MAX_LEG_TURN: a nearly straight leg needs a large bend for a small pin shift, and
    the motion's pose matters more there than a few millimetres of slide."""
    shift = target - ankle
    low, high = np.zeros(len(target)), np.ones(len(target))
    ok = _segment_turns(hip, knee, ankle, target, upper, lower) <= MAX_LEG_TURN
    low[ok] = 1.0
    todo = ~ok
    for _ in range(steps):
        if not todo.any():
            break
        mid = (low + high) / 2
        fits = _segment_turns(hip, knee, ankle, ankle + mid[:, None] * shift, upper, lower) <= MAX_LEG_TURN
        low = np.where(todo & fits, mid, low)
        high = np.where(todo & ~fits, mid, high)
    return ankle + low[:, None] * shift


def _smooth_max(shift: np.ndarray, radius: int = 2) -> np.ndarray:
    """Per-frame root shifts widened (never smaller) and eased, so the hips don't jerk."""
    F = len(shift)
    mag = np.linalg.norm(shift, axis=-1)
    out = shift.copy()
    for f in range(F):
        lo, hi = max(0, f - radius), min(F, f + radius + 1)
        i = lo + int(np.argmax(mag[lo:hi]))
        if mag[i] > mag[f]:
            out[f] = shift[i] * (1.0 - 0.5 * abs(i - f) / (radius + 1)) if abs(i - f) else shift[i]
            if np.linalg.norm(out[f]) < mag[f]:
                out[f] = shift[f]
    return out


def _subtree(plan: RigPlan, top: int, stop: int) -> list[int]:
    """`top` and its descendants that are not `stop` or below it."""
    parents = plan.rig.parents
    out = [top]
    for b in range(top + 1, len(parents)):
        p = parents[b]
        if b != stop and p in out:
            out.append(b)
    return out

"""Planted feet: where the source has a heel or a ball of the foot planted, keep the rig's there.

Contacts come from the source joints, per point (heel = ankle joint, ball = foot joint): low and
slow, in source leg lengths. A planted point gets a pin (its mean position over the contact) and
a weight that eases in and out around the contact. Each frame then asks for:

* an ankle position: the heel's pin, or, while only the ball is planted (the heel lifting as the
  foot rolls), where the ankle must be for the ball to stay on its pin with the foot turned as
  the motion turns it;
* a foot turn: while both are planted, the foot pivots about the ankle so the ball meets its pin.

A two-bone IK turns thigh and shin towards the ankle position, within the leg's own bend plane.
No segment turns more than MAX_LEG_TURN from the motion (short of it, the pin gives way a little:
a nearly straight leg needs a large bend for a small shift, and the pose matters more); the hips
come down where a pin is out of the stretched leg's reach, so legs never stretch.
"""
from __future__ import annotations

import numpy as np

from model_core.control.curves import runs, smoothstep
from model_core.control.pose import two_bone
from model_core.motion.rotations import axis_angle, normalize, swing

from .plan import Foot, RigPlan, forward_kinematics
from .rest import subtree
from .rotations import axis_and_angle

CONTACT_HEIGHT = 0.08    # source leg lengths above that point's own lowest height in the motion
CONTACT_SPEED = 0.6      # source leg lengths per second
MIN_CONTACT_S = 0.1      # shorter contacts are left free (s)
BLEND_S = 0.15           # time to ease in and out of a lock (s)
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))  # hip, knee, ankle, toe per side
REACH = 0.998            # the most a locked leg is stretched, of its full length
MAX_LEG_TURN = 9.5       # degrees: the most a lock may turn a thigh or shin away from the motion
MAX_FOOT_TURN = 9.5      # degrees: the most a lock may pivot a foot about its ankle


def detect_points(J: np.ndarray, fps: float) -> np.ndarray:
    """(F, 2, 2) bool: [frame, side (left, right), point (heel, ball)] planted in the source
    (Blender axes): the point within CONTACT_HEIGHT of its lowest and slower than CONTACT_SPEED."""
    F = len(J)
    out = np.zeros((F, 2, 2), dtype=bool)
    if F < 2:
        return out
    leg = _source_leg(J)
    for side, (_, _, ankle, toe) in enumerate(LEGS):
        for k, j in enumerate((ankle, toe)):
            p = J[:, j]
            step = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
            v = np.empty(F)
            v[1:-1] = np.minimum(step[:-1], step[1:])
            v[0], v[-1] = step[0], step[-1]
            low = p[:, 2] < p[:, 2].min() + CONTACT_HEIGHT * leg
            out[:, side, k] = _drop_short(low & (v < CONTACT_SPEED * leg), max(2, int(round(MIN_CONTACT_S * fps))))
    return out


def detect_contacts(J: np.ndarray, fps: float) -> np.ndarray:
    """(F, 2) bool: left / right heel planted (see `detect_points`)."""
    return detect_points(J, fps)[:, :, 0]


def _source_leg(J: np.ndarray) -> float:
    legs = [np.linalg.norm(J[:, k] - J[:, h], axis=-1) + np.linalg.norm(J[:, a] - J[:, k], axis=-1)
            for h, k, a, _ in LEGS]
    return float(np.median(np.concatenate(legs)))


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for s, e in runs(mask):
        if e - s < min_len:
            out[s:e] = False
    return out


def pins(positions: np.ndarray, planted: np.ndarray, blend: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (F,), pin (F, 3)): each contact's mean position, weight 1 during it, eased around it."""
    F = len(positions)
    weight = np.zeros(F)
    pinned = positions.copy()
    for s, e in runs(planted):  # frames s..e-1 planted
        pin = positions[s:e].mean(axis=0)
        for f in range(max(0, s - blend), min(F, e + blend)):
            w = 1.0 if s <= f < e else smoothstep(1.0 - (s - f if f < s else f - e + 1) / (blend + 1))
            if w > weight[f]:
                weight[f], pinned[f] = w, pin
    return weight, pinned


def _foot_goals(plan: RigPlan, foot: Foot, Q: np.ndarray, heads: np.ndarray, planted: np.ndarray,
                blend: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ankle target (F, 3), foot turn (F, 3, 3)) of one foot, or None when nothing is planted."""
    if not planted.any():
        return None
    ankle = heads[:, foot.ankle]
    w_heel, pin_heel = pins(ankle, planted[:, 0], blend)
    heel_fix = w_heel[:, None] * (pin_heel - ankle)
    turn = np.broadcast_to(np.eye(3), (len(ankle), 3, 3)).copy()
    if foot.ball is None or not planted[:, 1].any():
        return ankle + heel_fix, turn
    reach = Q[:, foot.ankle] @ (foot.ball - foot.heel)   # ankle → ball, as the motion turns the foot
    w_ball, pin_ball = pins(ankle + reach, planted[:, 1], blend)
    ball_fix = w_ball[:, None] * (pin_ball - ankle - reach)
    # The heel pinned (or easing in): the foot pivots so the ball meets its pin. The heel free: the
    # whole foot, ankle included, moves with the ball's correction.
    target_reach = reach + w_heel[:, None] * (ball_fix - heel_fix)
    turn = _limited(swing(reach, target_reach), MAX_FOOT_TURN)
    return ankle + heel_fix + (1.0 - w_heel)[:, None] * ball_fix, turn


def _limited(R: np.ndarray, degrees: float) -> np.ndarray:
    """Rotations scaled down to at most `degrees` about their own axes."""
    axis, angle = axis_and_angle(R)
    limit = np.radians(degrees)
    big = angle > limit
    if not big.any():
        return R
    out = R.copy()
    out[big] = axis_angle(axis[big], np.full(int(big.sum()), limit))
    return out


def lock_feet(plan: RigPlan, Q: np.ndarray, heads: np.ndarray, contacts: np.ndarray, fps: float,
              offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World deltas with feet pivoted and thighs and shins turned so planted heels and balls stay
    put, and the root offset lowered where a pinned ankle would be out of the leg's reach.
    `contacts` is (F, 2, 2) as `detect_points` gives it (or (F, 2): heels only)."""
    if contacts.ndim == 2:
        contacts = np.stack([contacts, np.zeros_like(contacts)], axis=-1)
    Q = Q.copy()
    blend = max(1, int(round(BLEND_S * fps)))
    legs = []
    for foot in plan.feet:
        goals = _foot_goals(plan, foot, Q, heads, contacts[:, foot.side], blend)
        if goals is None:
            continue
        target, turn = goals
        for b in subtree(plan.rig.parents, foot.ankle):
            Q[:, b] = turn @ Q[:, b]
        upper = float(np.linalg.norm(plan.heads[foot.knee] - plan.heads[foot.hip]))
        lower = float(np.linalg.norm(plan.heads[foot.ankle] - plan.heads[foot.knee]))
        legs.append((foot.hip, foot.knee, foot.ankle, upper, lower, target))
    if not legs:
        return Q, offset
    offset, heads = _lower_hips(plan, Q, heads, offset, legs)
    for h, k, a, upper, lower, target in legs:
        target = _within_turn(heads[:, h], heads[:, k], heads[:, a], target, upper, lower)
        new_knee, reached = _leg_ik(heads[:, h], heads[:, k], heads[:, a], target, upper, lower)
        turn_upper = swing(heads[:, k] - heads[:, h], new_knee - heads[:, h])
        turn_lower = swing(heads[:, a] - heads[:, k], reached - new_knee)
        # Turn the thigh chain and the shin chain; bones below the ankle keep their world turn.
        for b in subtree(plan.rig.parents, h, stop=k):
            Q[:, b] = turn_upper @ Q[:, b]
        for b in subtree(plan.rig.parents, k, stop=a):
            Q[:, b] = turn_lower @ Q[:, b]
    return Q, offset


def _lower_hips(plan: RigPlan, Q, heads, offset, legs):
    """Bring the hips towards pins that the straight leg can't reach."""
    shift = np.zeros_like(offset)
    for h, _, _, upper, lower, target in legs:
        reach = target - heads[:, h]
        dist = np.linalg.norm(reach, axis=-1)
        need = np.maximum(dist - REACH * (upper + lower), 0.0)
        move = normalize(reach) * need[:, None]
        bigger = np.linalg.norm(move, axis=-1) > np.linalg.norm(shift, axis=-1)
        shift[bigger] = move[bigger]
    if not shift.any():
        return offset, forward_kinematics(plan, Q, offset)
    offset = offset + _smooth_max(shift)
    return offset, forward_kinematics(plan, Q, offset)


def _leg_ik(hip, knee, ankle, target, upper: float, lower: float):
    """(knee, ankle) per frame reaching for `target` on the rig's own leg lengths, the leg
    stretched to at most 99.99% of its length (`control.pose.two_bone`)."""
    return two_bone(hip, knee, ankle, target, upper, lower, longest=(upper + lower) * 0.9999)


def _segment_turns(hip, knee, ankle, target, upper: float, lower: float) -> np.ndarray:
    """Per frame, the larger angle (degrees) by which reaching `target` turns the thigh or shin."""
    new_knee, reached = _leg_ik(hip, knee, ankle, target, upper, lower)

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

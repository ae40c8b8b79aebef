"""Where the anatomical joints sit along one limb chain, from its rest geometry (pure NumPy).

A chain is the bones from the limb's start to its end (hip region → toe, collar region → hand),
given as their world heads. Rigs put extra bones in series along a limb (MakeHuman
`upperleg01/02`, Daz `ThighBend → ThighTwist`, MMD `腕 → 腕捩 → ひじ`) and pass-through bones
before it (CMU `LHipJoint`, collars); the joints are the heads that make the best limb:
two long segments of similar length (thigh and shin, upper arm and forearm), with every bone in
between on the straight line (a twist), bending where the limb bends, the ankle where the chain
turns forward, the shoulder out at the side of the torso. Every choice is scored, so how sure a
joint is comes from how much worse the best alternative for it scores. Names only nudge.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

LIMB_RATIO = 1.0          # thigh/shin and upper arm/forearm are about equally long (HumanML3D: 0.91, 0.97)
NAME_AGREES, NAME_DISAGREES, NAME_HELPER = -0.15, 0.15, 0.4
SAME_POINT = 1e-3         # of the rig's height: heads this close are one point
CONFIDENT_MARGIN = 0.5    # a cost margin this large (or more) is full confidence
BALL_REACH = 0.045        # of the height: the ball of the foot is at least this far out from the ankle
                          # (7-9% in real rigs; heel bones 2-3%)


@dataclass
class Fit:
    """Chain indices per joint kind ('hip', 'knee', ...), the cost, and a confidence per kind."""

    joints: dict[str, int]
    cost: float
    confidence: dict[str, float]


def _line_deviation(points: np.ndarray, a: int, b: int) -> float:
    """Largest distance of the heads strictly between a and b from the segment a→b, over its length."""
    if b - a < 2:
        return 0.0
    seg = points[b] - points[a]
    length = float(np.linalg.norm(seg))
    if length < 1e-9:
        return 1.0
    u = seg / length
    rel = points[a + 1:b] - points[a]
    t = rel @ u
    off = np.linalg.norm(rel - t[:, None] * u, axis=1)
    outside = np.maximum(np.maximum(-t, t - length), 0.0)
    return float(np.max(off + outside) / length)


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    c = u @ v / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _names(kinds: list[str | None], chosen: dict[str, int]) -> float:
    """Name nudges: a bone whose name says the joint it got, another joint, or a helper."""
    cost = 0.0
    for kind, i in chosen.items():
        said = kinds[i]
        if said == kind:
            cost += NAME_AGREES
        elif said == "helper":
            cost += NAME_HELPER
        elif said is not None:
            cost += NAME_DISAGREES
    return cost


def _coincident(points: np.ndarray, chosen: dict[str, int], height: float) -> float:
    """Of two bones in series with one head, the lower one is the joint (the upper one is a
    parent/socket helper in every convention that has both)."""
    cost = 0.0
    for i in chosen.values():
        if i + 1 < len(points) and np.linalg.norm(points[i + 1] - points[i]) < SAME_POINT * height:
            cost += 0.05
    return cost


def _confidence(costs: list[tuple[float, dict[str, int]]], best: dict[str, int], points: np.ndarray,
                height: float) -> dict[str, float]:
    """Per joint kind: 1 - exp(-3 · margin / CONFIDENT_MARGIN), margin = how much worse the best fit
    that puts this joint at another point scores (a bone with the same head is the same joint)."""
    base = costs[0][0]
    out = {}
    for kind, i in best.items():
        other = [c for c, j in costs if kind not in j or
                 np.linalg.norm(points[j[kind]] - points[i]) > SAME_POINT * height]
        margin = (min(other) - base) if other else CONFIDENT_MARGIN * 2
        out[kind] = float(1.0 - math.exp(-3.0 * margin / CONFIDENT_MARGIN))
    return out


def fit_leg(points: np.ndarray, kinds: list[str | None], floor: float, height: float,
            toe_hub: bool = False) -> Fit | None:
    """Hip, knee, ankle and (when there is one) the ball of the foot along a leg chain whose
    heads run from near the body's centre down to the toes."""
    m = len(points)
    if m < 2:
        return None
    top = max(float(points[0, 2] - floor), 1e-9)
    costs: list[tuple[float, dict[str, int]]] = []
    for h, k, a in itertools.combinations(range(m), 3) if m >= 3 else [(0, None, 1)]:
        chosen = {"hip": h, "ankle": a} if k is None else {"hip": h, "knee": k, "ankle": a}
        cost = _leg_cost(points, chosen, floor, top, height)
        if cost is None:
            continue
        b = a + 1
        if not toe_hub and b < m and _is_ball(points[a], points[b], height):
            chosen["foot"] = b
        cost += _names(kinds, chosen) + _coincident(points, chosen, height)
        costs.append((cost, chosen))
    return _best_fit(costs, points, height)


def _best_fit(costs: list, points: np.ndarray, height: float) -> Fit | None:
    """The cheapest choice of joints, with how sure it is (how much worse the next choice scores)."""
    if not costs:
        return None
    costs.sort(key=lambda c: c[0])
    best = costs[0][1]
    return Fit(dict(best), costs[0][0], _confidence(costs, best, points, height))


def _is_ball(ankle: np.ndarray, ball: np.ndarray, height: float) -> bool:
    """The ball of the foot lies well out from the ankle (a heel bone sits close behind it)."""
    d = ball - ankle
    horizontal = float(np.linalg.norm(d[:2]))
    return horizontal > BALL_REACH * height and horizontal >= 0.3 * max(-d[2], 0.0) and d[2] <= 0.02 * height


def _leg_cost(points, chosen, floor, top, height) -> float | None:
    h, a = chosen["hip"], chosen["ankle"]
    k = chosen.get("knee")
    ankle_height = (points[a, 2] - floor) / top
    if k is None:  # two heads only: a leg in one bone
        whole = points[a] - points[h]
        return 0.0 if -whole[2] > 0.5 * np.linalg.norm(whole) else None
    thigh, shin = points[k] - points[h], points[a] - points[k]
    lt, ls = float(np.linalg.norm(thigh)), float(np.linalg.norm(shin))
    if lt < 1e-6 or ls < 1e-6 or -thigh[2] < 0.5 * lt or -shin[2] < 0.5 * ls:
        return None
    cost = 3.0 * math.log(lt / ls / LIMB_RATIO) ** 2
    cost += 8.0 * (_line_deviation(points, h, k) + _line_deviation(points, k, a))
    cost += 4.0 * max(0.0, ankle_height - 0.2)
    cost -= 0.3 * min(_angle(thigh, shin), 15.0) / 15.0
    if a + 1 < len(points):  # the chain still runs down the shin below the "ankle"
        below = points[a + 1] - points[a]
        lb = float(np.linalg.norm(below))
        if lb > 0.15 * ls and -below[2] > 2.0 * np.linalg.norm(below[:2]):
            cost += 1.0
    if h > 0:  # the thigh's line carries on above the "hip"
        above = points[h] - points[h - 1]
        la = float(np.linalg.norm(above))
        if la > 0.1 * lt and above @ thigh / (la * lt) > 0.97:
            cost += 1.0
    return cost


def fit_arm(points: np.ndarray, kinds: list[str | None], lateral: np.ndarray, height: float,
            hand: int | None, shoulder_min: float) -> Fit | None:
    """Collar, shoulder, elbow and wrist along an arm chain from the torso out to the hand.

    `lateral` is each head's distance from the body's mid-plane; `hand` the chain index where the
    finger chains start (None for a rig without fingers); `shoulder_min` how far out from the
    mid-plane a shoulder joint must at least be (a collar's head is nearer the middle)."""
    m = len(points)
    if m == 0:
        return None
    if m == 1:
        return Fit({"shoulder": 0}, 0.0, {"shoulder": 0.6})
    if m == 2:
        return Fit({"shoulder": 0, "elbow": 1}, 0.0, {"shoulder": 0.6, "elbow": 0.5})
    wrists = range(2, m) if hand is None else range(max(2, hand - 2), hand + 1)
    costs: list[tuple[float, dict[str, int]]] = []
    for w in wrists:
        for s, e in itertools.combinations(range(w), 2):
            chosen = {"shoulder": s, "elbow": e, "wrist": w}
            cost = _arm_cost(points, chosen, lateral, shoulder_min)
            if cost is None:
                continue
            if hand is not None:
                cost += 0.5 * (hand - w)
            collar = _collar(points, s, lateral, height)
            if collar is not None:
                chosen["collar"] = collar
            cost += _names(kinds, chosen) + _coincident(points, chosen, height)
            costs.append((cost, chosen))
    return _best_fit(costs, points, height)


def _arm_cost(points, chosen, lateral, shoulder_min) -> float | None:
    s, e, w = chosen["shoulder"], chosen["elbow"], chosen["wrist"]
    upper, fore = points[e] - points[s], points[w] - points[e]
    lu, lf = float(np.linalg.norm(upper)), float(np.linalg.norm(fore))
    if lu < 1e-6 or lf < 1e-6:
        return None
    cost = 3.0 * math.log(lu / lf / LIMB_RATIO) ** 2
    cost += 8.0 * (_line_deviation(points, s, e) + _line_deviation(points, e, w))
    cost += 2.0 * max(0.0, (shoulder_min - lateral[s]) / max(shoulder_min, 1e-9))
    cost -= 0.3 * min(_angle(upper, fore), 15.0) / 15.0
    if s > 0:  # the upper arm's line carries on towards the body above the "shoulder"
        above = points[s] - points[s - 1]
        la = float(np.linalg.norm(above))
        if la > 0.1 * lu and above @ upper / (la * lu) > 0.97:
            cost += 0.5
    return cost


def _collar(points, s: int, lateral: np.ndarray, height: float) -> int | None:
    """The deepest bone before the shoulder whose head is apart from it and nearer the middle."""
    for i in range(s - 1, -1, -1):
        if np.linalg.norm(points[s] - points[i]) < SAME_POINT * height:
            continue
        return i if lateral[i] < lateral[s] else None  # of coincident bones, i is the deeper one
    return None

"""The upper body from the skeleton's shape: pelvis, spine, neck, head, arms, and the facing (pure).

The pelvis is the bone whose rotation carries the legs and the spine together: the lowest
common ancestor of the legs and of the chain that climbs to the head. When that ancestor sits
away from the hips (MMD: センター/グルーブ above 下半身 and 上半身), the rig splits its pelvis:
the lower-body bone that carries the legs plays the pelvis and the upper-body bone starts the
spine (the bake moves the whole body through the common ancestor). Arms are the long one-sided
chains hanging off the upper body, in a mirrored pair; the hand is where the finger chains
start. The facing comes from the feet (toes point forward), the knees and the face; names
decide only when the shape cannot (a blocky rig without feet).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .body import Leg, Skeleton
from .limbs import SAME_POINT, Fit, fit_arm
from .names import central_kind, side_and_base

SPLIT = 0.05          # of the height: a legs/spine ancestor this far from the legs' hub is no pelvis
UPPER_REACH = 0.65    # the upper body reaches at least this high
CENTRAL = 0.05        # of the height: a head this close to the mid-plane is on the body's centre line
HEAD_END = 0.09       # a top leaf this far above its parent marks the head's end, not a joint
ARM_MIN = 0.15        # an arm chain is at least this long


@dataclass
class Arm:
    root: int
    chain: list[int]
    fit: Fit
    joints: dict[str, int]    # 'collar', 'shoulder', 'elbow', 'wrist' → bone
    side: float               # mean lateral position (sign: which side of the mid-plane)
    hand: bool                # finger chains start at the wrist


@dataclass
class Torso:
    pelvis: int
    split: bool                               # a lower-body bone plays the pelvis (see module doc)
    spine: list[int] = field(default_factory=list)   # between pelvis and neck, bottom first
    neck: int | None = None
    head: int | None = None
    arms: list[Arm] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Frame:
    """The body's mid-plane: lateral positions measured from the hips' middle along `u`."""

    def __init__(self, sk: Skeleton, legs: tuple[Leg, Leg]):
        a, b = (sk.heads[leg.joints.get("hip", leg.root)] for leg in legs)
        u = (a - b) * np.array([1.0, 1.0, 0.0])
        if np.linalg.norm(u) < 1e-6 * sk.height:
            u = (sk.heads[legs[0].chain[-1]] - sk.heads[legs[1].chain[-1]]) * np.array([1.0, 1.0, 0.0])
        self.u = u / max(np.linalg.norm(u), 1e-12)
        self.mid = (a + b) / 2
        self.half_width = float(np.linalg.norm((a - b)[:2])) / 2

    def lateral(self, points: np.ndarray) -> np.ndarray:
        return (points - self.mid) @ self.u


def find_torso(sk: Skeleton, legs: tuple[Leg, Leg], frame: Frame) -> Torso:
    hub = sk.lca([legs[0].root, legs[1].root])
    _, high = sk.reach()
    lca, upper = hub, None
    leg_set = {legs[0].root, legs[1].root}
    for x in [hub] + sk.ancestors(hub):
        kids = [c for c in sk.children[x] if c not in leg_set and hub not in sk.subtree(c) and c != hub
                and (high[c] - sk.floor) > UPPER_REACH * sk.height and not sk.helper[c]]
        if kids:
            lca, upper = x, max(kids, key=lambda c: high[c])
            break
    if upper is None:
        return Torso(pelvis=hub, split=False, problems=["no upper body: nothing climbs from the hips to a head"])
    split = lca != hub and float(np.linalg.norm(sk.heads[lca] - sk.heads[hub])) > SPLIT * sk.height
    torso = Torso(pelvis=hub if split else lca, split=split)
    excluded = set()
    for leg in legs:
        excluded |= set(sk.subtree(leg.root))
    region = [b for b in sk.subtree(lca) if b not in excluded and b != lca and hub not in sk.subtree(b)]
    torso.arms, arm_problems = _pick_arms(sk, region, frame, torso.pelvis)
    torso.problems += arm_problems
    start = upper if split else lca
    _spine_and_head(sk, torso, start, frame)
    return torso


def _one_sided(sk: Skeleton, region: list[int], frame: Frame) -> list[int]:
    """Maximal subtrees of the region that lie on one side of the mid-plane and reach out."""
    side_of = {}
    h = sk.height
    for b in region:
        lat = frame.lateral(sk.heads[sk.subtree(b)])
        if lat.min() > -0.01 * h and lat.max() > CENTRAL * h:
            side_of[b] = 1
        elif lat.max() < 0.01 * h and lat.min() < -CENTRAL * h:
            side_of[b] = -1
    return [b for b in side_of if side_of.get(int(sk.parents[b])) != side_of[b] and not sk.helper[b]]


def _arm_chain(sk: Skeleton, root: int) -> tuple[list[int], int | None]:
    """The arm's main line (root → the farthest bone) and the index where finger chains start."""
    tree = [b for b in sk.subtree(root) if not sk.helper[b]]
    far = max(tree, key=lambda b: np.linalg.norm(sk.heads[b] - sk.heads[root]))
    chain = sk.path(root, far)
    for i in range(len(chain) - 2, -1, -1):
        b, nxt = chain[i], chain[i + 1]
        out = [c for c in sk.children[b] if not sk.helper[c] and not _inside(sk, b, nxt, c)]
        if len(out) >= 2 and any(sk.children[c] for c in out):
            return chain, i
    return chain, None


def _inside(sk: Skeleton, b: int, nxt: int, c: int) -> bool:
    """A child whose head lies inside the segment from b to its chain child, its start included
    (a twist bone on a side branch, such as UE's `upperarm_twist_01_l` or CC's `UpperarmTwist01`)."""
    if c == nxt:
        return False
    seg = sk.heads[nxt] - sk.heads[b]
    length = float(np.linalg.norm(seg))
    if length < 1e-9:
        return False
    rel = sk.heads[c] - sk.heads[b]
    t = rel @ seg / length
    off = float(np.linalg.norm(rel - t * seg / length))
    return -0.02 * length <= t < 0.98 * length and off < 0.15 * length


def _chain_length(sk: Skeleton, chain: list[int]) -> float:
    return float(np.linalg.norm(np.diff(sk.heads[chain], axis=0), axis=1).sum()) if len(chain) > 1 else \
        float(np.linalg.norm(sk.tails[chain[0]] - sk.heads[chain[0]]))


def _make_arm(sk: Skeleton, root: int, frame: Frame) -> Arm | None:
    chain, hand = _arm_chain(sk, root)
    if _chain_length(sk, chain) < ARM_MIN * sk.height:
        return None
    if hand is not None:
        chain = chain[: hand + 1]
    lat = np.abs(frame.lateral(sk.heads[chain]))
    shoulder_min = max(0.6 * frame.half_width, 0.04 * sk.height)
    fit = fit_arm(sk.heads[chain], [sk.kinds[b] for b in chain], lat, sk.height, hand, shoulder_min)
    if fit is None:
        return None
    joints = {k: chain[i] for k, i in fit.joints.items()}
    side = float(np.mean(frame.lateral(sk.heads[chain])))
    return Arm(root, chain, fit, joints, side, hand is not None)


def _pick_arms(sk: Skeleton, region: list[int], frame: Frame, pelvis: int) -> tuple[list[Arm], list[str]]:
    arms = [a for a in (_make_arm(sk, r, frame) for r in _one_sided(sk, region, frame)
                        if sk.heads[r, 2] > sk.heads[pelvis, 2]) if a is not None]
    h = sk.height
    best, best_cost = None, np.inf
    for a, b in itertools.combinations(arms, 2):
        if a.side * b.side >= 0:
            continue
        la, lb = _chain_length(sk, a.chain), _chain_length(sk, b.chain)
        za, zb = sk.heads[a.root, 2], sk.heads[b.root, 2]
        cost = a.fit.cost + b.fit.cost + 5 * abs(la - lb) / h + 5 * abs(za - zb) / h - min(la, lb) / h
        cost += 0.5 * ((not a.hand) + (not b.hand)) + max(0.0, (za + zb) / 2 - sk.floor - 0.9 * h) / h * 10
        if cost < best_cost:
            best, best_cost = (a, b), cost
    if best is not None:
        return list(best), []
    handed = [a for a in arms if a.hand]
    if len(handed) == 1:
        return [], ["one arm: a hand hangs on one side only, the other arm is missing"]
    return [], []


def _up_chain(sk: Skeleton, start: int, frame: Frame, skip: set[int]) -> list[int]:
    """From `start`, keep climbing to the central child that rises and reaches highest; stop at a
    bone where the chain fans out (the head: eyes, jaw, hair hang from it)."""
    _, high = sk.reach()
    chain = [start]
    while True:
        b = chain[-1]
        if b != start and sum(1 for c in sk.children[b] if not sk.helper[c] and c not in skip) >= 2:
            return chain
        up = [c for c in sk.children[b] if c not in skip and not sk.helper[c]
              and abs(frame.lateral(sk.heads[c])) < CENTRAL * sk.height
              and sk.heads[c, 2] >= sk.heads[b, 2] + 0.01 * sk.height]
        if not up:
            return chain
        chain.append(max(up, key=lambda c: (sk.kinds[c] != "helper", high[c])))


def _spine_and_head(sk: Skeleton, torso: Torso, start: int, frame: Frame) -> None:
    skip = set()
    for arm in torso.arms:
        skip |= set(sk.subtree(arm.root))
    branch = sk.lca([a.root for a in torso.arms]) if len(torso.arms) == 2 else None
    base = start
    if branch is not None:
        branch = int(sk.parents[branch]) if branch in (torso.arms[0].root, torso.arms[1].root) else branch
        if branch == start or start in sk.ancestors(branch):
            base = branch
        else:
            branch = None
    lower = sk.path(start, base)
    chain = _up_chain(sk, base, frame, skip)
    top = chain[-1]
    named = [b for b in chain[1:] if central_kind(sk.names[b]) == "head"]
    if named:
        head = named[0]
    elif len(chain) > 2 and not sk.children[top] and \
            sk.heads[top, 2] - sk.heads[chain[-2], 2] > HEAD_END * sk.height:
        head = chain[-2]  # a leaf far above its parent marks the top of the skull
    else:
        head = top if len(chain) > 1 else None
    torso.head = head
    upper = chain[1: chain.index(head)] if head is not None else chain[1:]
    if branch is not None and upper:
        torso.neck = upper[0]  # more bones between neck and head (CMU's Neck1) are part of the neck
        between = lower
    else:
        between = lower + upper
    torso.spine = [b for b in between if b != torso.pelvis]


def facing(sk: Skeleton, legs: tuple[Leg, Leg], torso: Torso, frame: Frame) -> tuple[float, float, str]:
    """(sign, confidence, how): the body faces `sign · (up × u)` (u: the frame's lateral axis), so
    its left is `-sign · u`. Feet first, then knees and the face, then names; a rig that gives no
    hint at all is taken to face -Y, Blender's front."""
    fwd = np.cross(np.array([0.0, 0.0, 1.0]), frame.u)  # the candidate forward for "u points right"
    h = sk.height
    feet = knees = 0.0
    for leg in legs:
        j = leg.joints
        if "foot" in j:
            feet += float((sk.heads[j["foot"]] - sk.heads[j["ankle"]]) @ fwd)
        elif "ankle" in j:  # no ball bone: the foot bone's own direction (real tails point to the toes)
            feet += 0.3 * float((sk.tails[j["ankle"]] - sk.heads[j["ankle"]]) @ fwd)
        if all(k in j for k in ("hip", "knee", "ankle")):
            knees += float((sk.heads[j["knee"]] - (sk.heads[j["hip"]] + sk.heads[j["ankle"]]) / 2) @ fwd)
    face = 0.0
    if torso.head is not None:
        below = [b for b in sk.subtree(torso.head) if b != torso.head]
        if below:
            face = float(np.mean((sk.heads[below] - sk.heads[torso.head]) @ fwd))
    score = np.clip(feet / (0.03 * h), -3, 3) + np.clip(knees / (0.02 * h), -1, 1) \
        + np.clip(face / (0.02 * h), -0.5, 0.5)
    if abs(score) >= 1.0:
        return float(np.sign(score)), float(min(1.0, 0.6 + 0.15 * abs(score))), "shape"
    named = _side_from_names(sk, legs, torso, frame)
    if named:
        return named, 0.7, "names"
    if abs(score) > 0.2:
        return float(np.sign(score)), 0.5, "shape (weak)"
    blender_front = np.array([0.0, -1.0, 0.0])
    return (1.0 if fwd @ blender_front >= 0 else -1.0), 0.3, "default"


def _side_from_names(sk: Skeleton, legs, torso: Torso, frame: Frame) -> float:
    """The facing sign the side words of the limbs' names vote for (0: no names, or a tie)."""
    votes = 0
    parts = [(leg.root, leg.chain) for leg in legs] + [(a.root, a.chain) for a in torso.arms]
    for _, chain in parts:
        lat = float(np.mean(frame.lateral(sk.heads[chain])))
        for b in chain:
            side = side_and_base(sk.names[b])[0]
            if side is not None and abs(lat) > SAME_POINT * sk.height:
                votes += (1 if side == "left" else -1) * (1 if lat > 0 else -1)
    # names say +u is the left side: left = up × forward, so forward = u × up = -(up × u)
    return float(-np.sign(votes)) if votes else 0.0

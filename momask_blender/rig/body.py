"""The skeleton as a shape: a tree of bones with world-space rest heads, and its legs (pure NumPy).

Legs are the chains that run from the body's centre down to the floor: bones whose subtree
reaches the floor, that start well above it and never climb above their own start, hanging in
twos or more from one bone (the hub: the pelvis, or MMD's 下半身, or CC's `CC_Base_Pelvis`).
Everything is measured relative to the rig's height, so centimetre rigs, object scales and
rotated objects (heads arrive in world space) look the same. Helper bones (constraint targets,
IK and pole bones, floor roots) hang elsewhere and never start a leg.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .limbs import Fit, fit_leg
from .names import classify, is_helper
from .rest import BoneInfo, BoneTree

FOOT_LEVEL = 0.12   # of the height: a subtree reaching this close to the floor reaches the floor
LEG_START = 0.2     # a leg starts at least this high
LEG_CLIMB = 0.05    # a leg never climbs above its own start by more than this
TOE_HUB = 3         # an ankle with this many forward children has toes, not one ball bone
HUB_TOP = 0.75      # legs hang from below this height (hair reaching the floor hangs from the head)


class Skeleton(BoneTree):
    """The bone tree with world-space rest geometry and what each bone's name says."""

    def __init__(self, bones: Sequence[BoneInfo]):
        super().__init__(bones)
        self.heads = np.array([b.head for b in bones], dtype=float).reshape(len(bones), 3)
        tails = np.array([b.tail if b.tail is not None else b.head for b in bones], dtype=float)
        self.tails = tails.reshape(len(bones), 3)
        self.driver = np.array([self.index.get(b.driver, -1) if b.driver else -1 for b in bones], dtype=int)
        self.deform = np.array([b.deform for b in bones], dtype=bool)
        self.helper = np.array([b.helper for b in bones], dtype=bool)  # a constraint aims at it: a control
        self.kinds = [("helper" if b.helper or is_helper(b.name) else classify(b.name)[1]) for b in bones]
        leaves = [i for i in range(len(bones)) if not self.children[i]]
        points = np.concatenate([self.heads, self.tails[leaves]])
        self.floor = float(points[:, 2].min())
        self.height = max(float(points[:, 2].max()) - self.floor, 1e-9)
        self._order = self._parents_first()

    def _parents_first(self) -> list[int]:
        order, stack = [], [i for i, p in enumerate(self.parents) if p < 0]
        while stack:
            b = stack.pop()
            order.append(b)
            stack.extend(self.children[b])
        return order

    def reach(self) -> tuple[np.ndarray, np.ndarray]:
        """Per bone: the lowest point of its subtree (heads, and tails of leaves) and its highest head."""
        n = len(self.names)
        low = np.where([not c for c in self.children], np.minimum(self.heads[:, 2], self.tails[:, 2]),
                       self.heads[:, 2])
        high = self.heads[:, 2].copy()
        for b in reversed(self._order):
            p = self.parents[b]
            if p >= 0:
                low[p], high[p] = min(low[p], low[b]), max(high[p], high[b])
        return low[:n], high[:n]

    def rel_height(self, b: int) -> float:
        return float(self.heads[b, 2] - self.floor) / self.height


@dataclass
class Leg:
    root: int                 # the first bone of the leg's branch
    chain: list[int]          # root → the toes (or the leg's end)
    fit: Fit
    joints: dict[str, int]    # 'hip', 'knee', 'ankle', 'foot' → bone index
    points: np.ndarray        # (K, 3) heads of the chain (plus the end's tail when the heads stop high)


def leg_roots(sk: Skeleton) -> list[int]:
    """Bones that start a leg: they reach the floor, start high, never climb, and hang in twos or
    more from one bone."""
    low, high = sk.reach()
    h, f = sk.height, sk.floor
    down = [(not sk.helper[b]) and low[b] - f < FOOT_LEVEL * h and sk.heads[b, 2] - f > LEG_START * h
            and high[b] <= sk.heads[b, 2] + LEG_CLIMB * h for b in range(len(sk.names))]
    roots = []
    for hub, kids in enumerate(sk.children):
        legs = [c for c in kids if down[c]]
        if len(legs) >= 2 and not sk.helper[hub]:
            roots += legs
    return roots


def leg_chain(sk: Skeleton, root: int) -> list[int]:
    """The leg's main line: from its root to the bone that is lowest and farthest out (the toes,
    not a heel bone that sits behind the ankle)."""
    tree = [b for b in sk.subtree(root) if not sk.helper[b]]
    start = sk.heads[root]
    score = [(sk.heads[b, 2] - sk.floor) - 0.5 * np.linalg.norm((sk.heads[b] - start)[:2]) for b in tree]
    return sk.path(root, tree[int(np.argmin(score))])


def fit_chain_leg(sk: Skeleton, root: int) -> Leg | None:
    chain = leg_chain(sk, root)
    points = sk.heads[chain]
    end = chain[-1]
    virtual = not sk.children[end] and sk.rel_height(end) > FOOT_LEVEL
    if virtual:  # a blocky leg whose heads stop high: the last bone's tail is where it ends
        points = np.concatenate([points, sk.tails[end][None]])
    kinds = [sk.kinds[b] for b in chain] + ([None] if virtual else [])
    if len(points) == 1:
        return Leg(root, chain, Fit({"hip": 0}, 0.0, {"hip": 0.6}), {"hip": chain[0]}, points)
    ankle_kids = 0
    fit = fit_leg(points, kinds, sk.floor, sk.height)
    if fit is None:
        return None
    if "ankle" in fit.joints and fit.joints["ankle"] < len(chain):
        a = chain[fit.joints["ankle"]]
        ankle_kids = sum(1 for c in sk.children[a] if sk.heads[c, 2] <= sk.heads[a, 2] and
                         np.linalg.norm((sk.heads[c] - sk.heads[a])[:2]) > 0.02 * sk.height)
        if ankle_kids >= TOE_HUB:
            fit = fit_leg(points, kinds, sk.floor, sk.height, toe_hub=True) or fit
    joints = {k: chain[i] for k, i in fit.joints.items() if i < len(chain)}
    return Leg(root, chain, fit, joints, points)


def _leg_preference(sk: Skeleton, leg: Leg) -> float:
    """Of parallel chains with the same joints (MMD's 足 and 足D), the one that drives the other,
    then a deforming one."""
    bones = list(leg.joints.values())
    return 0.3 * sum(sk.driver[b] >= 0 for b in bones) + 0.05 * sum(not sk.deform[b] for b in bones)


def _joint_points(leg: Leg, sk: Skeleton) -> np.ndarray:
    return np.array([sk.heads[leg.joints[k]] if k in leg.joints else sk.heads[leg.root]
                     for k in ("hip", "knee", "ankle")])


def pick_legs(sk: Skeleton) -> tuple[tuple[Leg, Leg] | None, list[str]]:
    """The best pair of legs, and problems: no pair, or more pairs than a biped has."""
    legs = [leg for leg in (fit_chain_leg(sk, r) for r in leg_roots(sk)) if leg is not None]
    h = sk.height
    scored = []
    for a, b in itertools.combinations(legs, 2):
        if a.root in sk.ancestors(b.root) or b.root in sk.ancestors(a.root):
            continue
        pa, pb = _joint_points(a, sk), _joint_points(b, sk)
        apart = float(np.linalg.norm((pa - pb)[:, :2], axis=1).mean())
        if apart < 0.02 * h:
            continue  # the same leg twice (parallel chains)
        sym = float(np.abs(pa[:, 2] - pb[:, 2]).sum()) / h * 10.0
        cost = a.fit.cost + b.fit.cost + sym + _leg_preference(sk, a) + _leg_preference(sk, b)
        cost += 2.0 * (sk.rel_height(sk.lca([a.root, b.root])) > HUB_TOP)
        scored.append((cost, a, b))
    if not scored:
        found = "one chain reaches" if len(legs) == 1 else "no chains reach"
        return None, [f"no legs: {found} the floor from the body's centre"]
    scored.sort(key=lambda s: s[0])
    _, a, b = scored[0]
    hub = sk.heads[sk.lca([a.root, b.root])]
    problems = []
    for _, c, d in scored[1:]:  # another pair hanging far from ours: front and hind legs
        other = sk.heads[sk.lca([c.root, d.root])]
        if float(np.linalg.norm((other - hub)[:2])) > 0.15 * h and {c.root, d.root}.isdisjoint({a.root, b.root}):
            problems.append("four legs: two pairs of chains reach the floor far apart (a quadruped?)")
            break
    return (a, b), problems

"""The plain description of an armature at rest: what the Blender edge reads once, and what both
detection and retargeting work from (pure NumPy, no bpy).

`RigRest` holds the bones parents first, with their rest matrices in armature space and the
object's world matrix; `BoneInfo` is one bone of it in world space, hashable, for detection
(which is cached per rig). Constraints arrive already read: `drivers[b]` is the bone whose
constraint sets b's rotation (Copy Rotation / Copy Transforms), so keys belong on the driver, and
`helpers[b]` marks the bones that constraints aim at (IK goals, poles, track targets), which are
controls, never anatomical joints; `iks` lists the IK constraints, whose targets and poles the bake
keys so that the chains they drive land where the motion has them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import MomaskError
from .rotations import polar_rotation

Point = tuple[float, float, float]


@dataclass(frozen=True)
class BoneInfo:
    """One bone as detection sees it: names and parents always, world-space rest geometry when known."""

    name: str
    parent: str | None
    head: Point | None = None     # world space, rest pose
    tail: Point | None = None     # unreliable on glTF imports (no tails in the format)
    deform: bool = True
    driver: str | None = None     # the bone whose constraint sets this bone's rotation
    helper: bool = False          # a constraint aims at it (IK goal, pole, track target)


@dataclass(frozen=True)
class IKLink:
    """An IK constraint of the armature, as bone indices: `owner`'s chain of `chain` bones (0: up
    to the root) reaches for the head of `target`; `pole` (or -1) sets the plane it bends in."""

    owner: int
    chain: int
    target: int
    pole: int = -1
    use_tail: bool = True


# ----------------------------------------------------------------------------- the bone tree


def ancestors(parents: Sequence[int] | np.ndarray, bone: int) -> list[int]:
    """`bone`'s parent, its parent's parent, ... up to a root (-1 ends the walk; so does a loop)."""
    out, p = [], int(parents[bone])
    while p >= 0 and p not in out:
        out.append(p)
        p = int(parents[p])
    return out


def children_of(parents: Sequence[int] | np.ndarray) -> list[list[int]]:
    """Each bone's children, in list order."""
    children: list[list[int]] = [[] for _ in parents]
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    return children


def subtree(parents: Sequence[int] | np.ndarray, top: int, stop: int | None = None,
            children: list[list[int]] | None = None) -> list[int]:
    """`top` and every bone below it, depth first (a bone's later children first), leaving out
    `stop` and what hangs below it."""
    children = children_of(parents) if children is None else children
    out, stack = [], [top]
    while stack:
        b = stack.pop()
        out.append(b)
        stack.extend(c for c in children[b] if c != stop)
    return out


def lowest_common(parents: Sequence[int] | np.ndarray, bones: Sequence[int]) -> int | None:
    """The lowest bone that is one of `bones` or above all of them (None: they share no root)."""
    common = None
    for b in bones:
        chain = [b] + ancestors(parents, b)
        common = chain if common is None else [c for c in common if c in chain]
    return common[0] if common else None


class BoneTree:
    """Bones by index (in any order) with their parents and children, from `BoneInfo` records; a
    parent that is not among the bones makes a root. What detection walks, by index or by name."""

    def __init__(self, bones: Sequence[BoneInfo]):
        self.names = [b.name for b in bones]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.parents = np.array([self.index.get(b.parent, -1) if b.parent else -1 for b in bones], dtype=int)
        self.children = children_of(self.parents)

    def ancestors(self, b: int) -> list[int]:
        return ancestors(self.parents, b)

    def subtree(self, b: int, stop: int | None = None) -> list[int]:
        return subtree(self.parents, b, stop, self.children)

    def path(self, top: int, bottom: int) -> list[int]:
        """Bones from `top` down to `bottom`, both included ([] when top is not above bottom)."""
        chain = [bottom] + self.ancestors(bottom)
        return list(reversed(chain[: chain.index(top) + 1])) if top in chain else []

    def lca(self, bones: Sequence[int]) -> int | None:
        return lowest_common(self.parents, bones)

    def depth(self, b: int) -> int:
        return len(self.ancestors(b))


# ----------------------------------------------------------------------------- the rig


def _none(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=int)


@dataclass(frozen=True, eq=False)
class RigRest:
    """What retargeting needs to know about an armature, read once from Blender."""

    names: tuple[str, ...]
    parents: np.ndarray        # (N,) index of each bone's parent, -1 for roots (parents come first)
    matrices: np.ndarray       # (N, 4, 4) rest matrices in armature space (Bone.matrix_local)
    tails: np.ndarray          # (N, 3) rest tails in armature space
    world: np.ndarray          # (4, 4) the armature object's world matrix
    connected: np.ndarray      # (N,) bool, Bone.use_connect (such bones can't move)
    local_location: np.ndarray  # (N,) bool, Bone.use_local_location
    drivers: np.ndarray | None = None  # (N,) index of the bone whose constraint sets the rotation, -1
    helpers: np.ndarray | None = None  # (N,) bool: a constraint aims at the bone
    deform: np.ndarray | None = None   # (N,) bool: Bone.use_deform
    iks: tuple[IKLink, ...] = ()       # IK constraints: their chains follow their targets, not their keys
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        n = len(self.names)
        if any(self.parents[i] >= i for i in range(n)):
            raise ValueError("RigRest bones must be listed parents first")
        for name, default in (("drivers", _none(n)), ("helpers", np.zeros(n, bool)), ("deform", np.ones(n, bool))):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)

    @property
    def index(self) -> dict[str, int]:
        if "index" not in self._cache:
            self._cache["index"] = {n: i for i, n in enumerate(self.names)}
        return self._cache["index"]

    @property
    def rotation(self) -> np.ndarray:
        """The object's world rotation (scale removed)."""
        return polar_rotation(self.world[:3, :3])

    def to_world(self, points: np.ndarray) -> np.ndarray:
        return points @ self.world[:3, :3].T + self.world[:3, 3]

    @property
    def heads_world(self) -> np.ndarray:
        return self.to_world(self.matrices[:, :3, 3])

    @property
    def tails_world(self) -> np.ndarray:
        return self.to_world(self.tails)

    def bone_infos(self) -> list[BoneInfo]:
        """The bones as detection reads them (world space, parents first)."""
        heads, tails = self.heads_world, self.tails_world
        out = []
        for i, name in enumerate(self.names):
            p, d = int(self.parents[i]), int(self.drivers[i])
            out.append(BoneInfo(name, self.names[p] if p >= 0 else None, _point(heads[i]), _point(tails[i]),
                                bool(self.deform[i]), self.names[d] if d >= 0 else None, bool(self.helpers[i])))
        return out


def _point(v: np.ndarray) -> Point:
    return (float(v[0]), float(v[1]), float(v[2]))


MIN_SCALE = 1e-6  # an axis scaled below this has collapsed: the rig has no shape to bake onto


def check_transform(world: np.ndarray, name: str) -> None:
    """Refuse an armature object whose transform collapses an axis (scale 0) or mirrors it (negative
    scale): the first has no rotations to solve (a singular matrix), the second swaps left and right."""
    m = np.asarray(world, dtype=np.float64)[:3, :3]
    scales = np.linalg.norm(m, axis=0)
    if not np.isfinite(m).all() or scales.min() < MIN_SCALE * max(scales.max(), 1.0):
        raise MomaskError(f"armature '{name}' has a scale of 0 (or nearly) on an axis: give it a non-zero scale "
                          "(Object > Transform > Scale) and bake again")
    if np.linalg.det(m) < 0:
        raise MomaskError(f"armature '{name}' is mirrored (a negative scale): its left and right would swap; "
                          "make the scale positive, or apply it (Object > Apply > Scale), and bake again")

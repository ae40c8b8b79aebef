"""Where a preview's camera looks and what it shows, as plain NumPy (the Blender side is
`scene.staging`): frames to sample, camera axes for a view of a character, the extent a camera that
follows the root must show and the orthographic scale that fits it, Blender's octahedral bone shape
for a stand-in mesh, and which bones a picture of a skeleton shows, on which side."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .rest import BoneInfo, BoneTree

VIEWS = {"front": 0.0, "three-quarter": 45.0, "side": 90.0}  # camera azimuth from the character's facing
ELEVATION = 5.0           # degrees the camera looks down: the floor shows as a band under the feet
MARGIN = 0.06             # share of the picture left free around the motion's extent
FORWARD = np.array([0.0, -1.0, 0.0])  # Blender characters face -Y


def pick_frames(first: int, last: int, count: int) -> list[int]:
    """`count` frames spread evenly from `first` to `last` (both included), no repeats."""
    if count < 1 or last < first:
        return []
    return sorted({int(round(f)) for f in np.linspace(first, last, count)})


def horizontal(v: np.ndarray) -> np.ndarray:
    """`v` flattened onto the floor and made unit length; -Y when it has no horizontal direction."""
    d = np.array([v[0], v[1], 0.0], np.float64)
    n = np.linalg.norm(d)
    return d / n if np.isfinite(n) and n > 1e-9 else FORWARD.copy()


def facing_from_hips(left_hip: np.ndarray, right_hip: np.ndarray) -> np.ndarray:
    """The horizontal forward of a body from its hips: a character facing -Y has its left on +X."""
    across = np.asarray(left_hip, np.float64) - np.asarray(right_hip, np.float64)
    return horizontal(np.cross(across, [0.0, 0.0, 1.0]))


def view_axes(facing: np.ndarray, view: str, elevation: float = ELEVATION) -> tuple[np.ndarray, ...]:
    """The camera's (look, right, up) unit vectors for a view of a character facing `facing`.

    `front` looks at the face, `side` at the character's right side (so it walks to the right of
    the picture), `three-quarter` between them; all look down by `elevation` degrees.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    f = horizontal(facing)
    a, e = math.radians(VIEWS[view]), math.radians(elevation)
    towards_camera = math.cos(a) * f + math.sin(a) * np.cross(f, [0.0, 0.0, 1.0])  # f × up: the right side
    look = -towards_camera * math.cos(e) + np.array([0.0, 0.0, -math.sin(e)])
    right = np.cross(look, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return look, right, np.cross(right, look)


def extents(points: Sequence[np.ndarray], roots: np.ndarray, rights: np.ndarray, ups: np.ndarray
            ) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of every frame's points on the picture of a camera that follows
    each frame's root horizontally (with that frame's right and up axes): what it must show."""
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for pts, root, right, up in zip(points, roots, rights, ups, strict=True):
        rel = np.asarray(pts, np.float64) - np.array([root[0], root[1], 0.0])
        screen = np.stack([rel @ right, rel @ up], axis=1)
        lo, hi = np.minimum(lo, screen.min(0)), np.maximum(hi, screen.max(0))
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def ortho_scale(box: tuple[float, float, float, float], size: tuple[int, int], top_px: int = 0,
                margin: float = MARGIN) -> float:
    """The height an orthographic camera must show for `box` to fit a `size` picture with a
    `margin` all round and `top_px` pixels kept free at the top (for the label)."""
    w, h = size
    width, height = box[1] - box[0], box[3] - box[2]
    usable = max(h - top_px, 1) / h
    return max(height * (1 + 2 * margin) / usable, width * (1 + 2 * margin) * h / w, 1e-3)


def octahedra(bones: Sequence[tuple[np.ndarray, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (6 per bone) and triangles (8 per bone) of Blender's octahedral bone shape, for
    (rest matrix 4×4 in armature space, length, half-width) triples: head, a square a tenth of the
    way along, tail."""
    unit = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [-1, 0, 0], [0, 0, -1], [0, 0, 0]], float)
    faces = np.array([[0, 2, 1], [0, 3, 2], [0, 4, 3], [0, 1, 4], [5, 1, 2], [5, 2, 3], [5, 3, 4], [5, 4, 1]])
    verts, tris = [], []
    for k, (matrix, length, width) in enumerate(bones):
        local = unit * width + np.array([0, 1, 1, 1, 1, 10])[:, None] * [0, 0.1 * length, 0]
        verts.append(np.c_[local, np.ones(6)] @ np.asarray(matrix, np.float64).T)
        tris.append(faces + 6 * k)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), int)
    return np.concatenate(verts)[:, :3], np.concatenate(tris)


def common_ancestor(bones: Sequence[tuple[str, str | None]], names: set[str]) -> str | None:
    """The lowest bone that has every one of `names` at or below it, from (name, parent) pairs."""
    tree = BoneTree([BoneInfo(name, parent) for name, parent in bones])
    found = [tree.index[n] for n in names if n in tree.index]
    top = tree.lca(found) if found else None
    return None if top is None else tree.names[top]


def shown_bones(bones: Sequence[tuple[str, str | None, float]], ends: set[str], height: float,
                top: str | None = None, smallest: float = 0.03) -> list[str]:
    """The bones a picture of the skeleton shows, from (name, parent, length) triples (parents
    first): every bone at least `smallest` of the rig's height, only at or below `top` (the body:
    not a root bone left on the floor, nor props beside it), and nothing below the `ends` (the
    bones the map calls the head and the wrists): a face rig and fingers are only specks at this
    size, while the body reads like the armature itself."""
    inside: set[str] = set()
    below: set[str] = set()
    out = []
    for name, parent, length in bones:
        if top is None or name == top or parent in inside:
            inside.add(name)
        if parent is not None and (parent in ends or parent in below):
            below.add(name)
        elif name in inside and length >= smallest * height:
            out.append(name)
    return out


def bone_sides(bones: Sequence[tuple[str, str | None]], bone_map: Mapping[str, str]) -> dict[str, str]:
    """left/right/center for each (bone, parent) (parents first): the side of the nearest joint of
    the bone map at or above the bone, so fingers are on their hand's side and the face in the middle."""
    joint_of = {bone: joint for joint, bone in bone_map.items()}
    sides: dict[str, str] = {}
    for name, parent in bones:
        joint = joint_of.get(name)
        if joint is not None:
            sides[name] = joint.partition("_")[0] if joint.startswith(("left_", "right_")) else "center"
        else:
            sides[name] = sides.get(parent, "center") if parent else "center"
    return sides


# ----------------------------------------------------------------------------- the camera


@dataclass
class Motion:
    """The character sampled at some frames: vertices (thinned), root and facing, world space."""

    frames: list[int]
    points: list[np.ndarray]
    roots: np.ndarray
    facings: np.ndarray

    def at(self, frame: int) -> int:
        return self.frames.index(frame)


@dataclass
class Framing:
    """How one view shows the whole motion: the height the camera sees and where the picture's
    centre sits along the camera's right and up axes, from the root's place on the floor plane."""

    view: str
    scale: float
    centre: tuple[float, float]
    depth: float


def plan_framing(motion: Motion, views: Sequence[str], size: tuple[int, int], top_px: int,
                 turn: bool) -> list[Framing]:
    """One framing per view, all at the same scale (so sizes compare between rows). With `turn`,
    the views turn with the body frame by frame; otherwise they keep the first frame's facing."""
    facings = motion.facings if turn else np.repeat(motion.facings[:1], len(motion.frames), 0)
    boxes = {}
    for v in views:
        axes = [view_axes(f, v) for f in facings]
        boxes[v] = extents(motion.points, motion.roots, np.array([a[1] for a in axes]), np.array([a[2] for a in axes]))
    scale = max(ortho_scale(b, size, top_px) for b in boxes.values())
    depth = float(np.ptp(np.concatenate(motion.points), axis=0).max()) + 4 * scale
    out = []
    for v in views:
        box = boxes[v]
        bottom = box[2] - MARGIN * (box[3] - box[2])  # the picture's bottom edge, a margin under the lowest point
        out.append(Framing(v, scale, (0.5 * (box[0] + box[1]), bottom + 0.5 * scale), depth))
    return out

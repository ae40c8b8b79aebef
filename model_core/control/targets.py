"""One motion's constraints as arrays, and the facts the post-pass reads off them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..motion.skeleton import T2M, SkeletonSpec
from .constraints import Constraint, Facing

ROOT = 0


@dataclass(frozen=True)
class Targets:
    """Constraints of one motion: `positions` (N, 3) with NaN on free axes."""
    frames: np.ndarray      # (N,) int
    joints: np.ndarray      # (N,) int
    positions: np.ndarray   # (N, 3) float64
    headings: tuple[tuple[int, float], ...] = ()  # (frame, angle) of Facing items

    @classmethod
    def from_constraints(cls, constraints: Sequence[Constraint | Facing], shift: int = 0) -> Targets:
        """`shift` is subtracted from every frame (constraints of a longer motion, one window)."""
        points = [c for c in constraints if not isinstance(c, Facing)]
        return cls(np.array([c.frame - shift for c in points], dtype=np.int64).reshape(-1),
                   np.array([c.joint_index for c in points], dtype=np.int64).reshape(-1),
                   np.array([c.target() for c in points], dtype=np.float64).reshape(-1, 3),
                   tuple((c.frame - shift, c.angle) for c in constraints if isinstance(c, Facing)))

    def __len__(self) -> int:
        return len(self.frames) + len(self.headings)

    def constrained_frames(self) -> np.ndarray:
        return np.unique(self.frames)

    def at(self, frame: int) -> dict[int, np.ndarray]:
        """joint → (3,) target (NaN on free axes) at one frame."""
        rows = np.flatnonzero(self.frames == frame)
        return {int(self.joints[i]): self.positions[i] for i in rows}

    def root_ground(self) -> tuple[np.ndarray, np.ndarray]:
        """Frames (sorted) and (x, z) targets of the pelvis on the ground plane."""
        rows = np.flatnonzero((self.joints == ROOT) & ~np.isnan(self.positions[:, 0]))
        rows = rows[np.argsort(self.frames[rows], kind="stable")]
        return self.frames[rows], self.positions[rows][:, [0, 2]]

    def root_height(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero((self.joints == ROOT) & ~np.isnan(self.positions[:, 1]))
        return self.frames[rows], self.positions[rows, 1]

    def facings(self, spec: SkeletonSpec = T2M) -> dict[int, float]:
        """frame → heading angle (about +Y, 0 = facing +Z) where hips and shoulders are all given,
        or a Facing says it (a pose's own hips and shoulders win)."""
        out = dict(self.headings)
        for frame in self.constrained_frames():
            given = self.at(int(frame))
            points = [given.get(j) for j in spec.face_joint_indx]
            if all(p is not None and not np.isnan(p).any() for p in points):
                out[int(frame)] = float(heading_angles(np.stack(points)[None], (0, 1, 2, 3))[0])
        return out


def heading_angles(joints: np.ndarray, face: Sequence[int]) -> np.ndarray:
    """Heading (T,) of each frame's body (T, J, 3), from hips and shoulders as the dataset's
    preprocessing finds the facing; 0 faces +Z, positive turns towards +X."""
    r_hip, l_hip, r_sdr, l_sdr = face
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, r_sdr] - joints[:, l_sdr])
    forward = np.cross([0.0, 1.0, 0.0], across)
    return np.arctan2(forward[:, 0], forward[:, 2])


def yaw_matrices(angles: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations about +Y by `angles`: +Z turns towards +X."""
    c, s = np.cos(angles), np.sin(angles)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)


def wrap(angle):
    """Into (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(angle, np.float64), 2 * np.pi)

"""The model core's BVH writer: read back with forward kinematics, the file gives the motion's bones."""
from __future__ import annotations

import numpy as np
import pytest

from model_core import ModelError
from model_core.motion import recover_from_ric
from model_core.motion.bvh import BVH_NAMES, bvh_text, write_bvh
from model_core.motion.skeleton import T2M, T2M_BONE_LENGTHS
from tests.conftest import shared_path


def read_bvh(text: str) -> tuple[list[str], list[int], np.ndarray, np.ndarray, float]:
    """Names, parents, offsets (J, 3), channel values (T, 3 + 3J) and frame time of a BVH with
    ZYX rotation channels (a small reader for this test, independent of the writer)."""
    lines = iter(text.splitlines())
    names, parents, offsets, stack, current = [], [], [], [], None
    for line in lines:
        words = line.split()
        if not words:
            continue
        if words[0] in ("ROOT", "JOINT"):
            names.append(words[1])
            parents.append(stack[-1] if stack else -1)
            current = len(names) - 1
        elif words[0] == "End":
            current = None
        elif words[0] == "{":
            stack.append(current)
        elif words[0] == "}":
            stack.pop()
        elif words[0] == "OFFSET" and current is not None and len(offsets) < len(names):
            offsets.append([float(v) for v in words[1:]])
        elif words[0] == "MOTION":
            break
    frames = int(next(lines).split()[1])
    frame_time = float(next(lines).split()[2])
    values = np.array([[float(v) for v in next(lines).split()] for _ in range(frames)])
    return names, [p if p is not None else -1 for p in parents], np.array(offsets), values, frame_time


def forward_kinematics(names, parents, offsets, values) -> np.ndarray:
    def axis(angle, i):
        c, s = np.cos(angle), np.sin(angle)
        m = np.zeros(angle.shape + (3, 3))
        j, k = [(1, 2), (2, 0), (0, 1)][i]
        m[..., i, i] = 1
        m[..., j, j], m[..., j, k], m[..., k, j], m[..., k, k] = c, -s, s, c
        return m

    angles = np.radians(values[:, 3:].reshape(len(values), len(names), 3))
    local = axis(angles[..., 0], 2) @ axis(angles[..., 1], 1) @ axis(angles[..., 2], 0)
    world, positions = np.zeros_like(local), np.zeros((len(values), len(names), 3))
    for j, parent in enumerate(parents):
        if parent < 0:
            world[:, j], positions[:, j] = local[:, j], values[:, :3] + offsets[j]
        else:
            world[:, j] = world[:, parent] @ local[:, j]
            positions[:, j] = positions[:, parent] + world[:, parent] @ offsets[j]
    return positions


@pytest.fixture(scope="module")
def real_joints() -> np.ndarray:
    features = np.load(shared_path("motions", "humanml3d_000612.npy")).astype(np.float64)
    return recover_from_ric(features, 22)


def test_the_file_gives_back_every_bone_of_a_real_motion(real_joints):
    names, parents, offsets, values, frame_time = read_bvh(bvh_text(real_joints))
    assert names[0] == "Hips" and sorted(names) == sorted(BVH_NAMES) and frame_time == pytest.approx(0.05)
    assert np.allclose(np.linalg.norm(offsets, axis=1)[[names.index(n) for n in BVH_NAMES]], T2M_BONE_LENGTHS,
                       atol=1e-5)
    back = forward_kinematics(names, parents, offsets, values)[:, [names.index(n) for n in BVH_NAMES]]
    for j in range(1, 22):
        want = real_joints[:, j] - real_joints[:, T2M.parents[j]]
        got = back[:, j] - back[:, T2M.parents[j]]
        cos = (want * got).sum(-1) / np.linalg.norm(want, axis=-1) / np.linalg.norm(got, axis=-1)
        angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        # chain bones exactly; the bones leaving the pelvis and spine3 share one rotation per joint
        limit = 5.0 if T2M.parents[j] in (0, 9) else 0.05
        assert angle.mean() < limit, (BVH_NAMES[j], angle.mean())
    assert np.linalg.norm(back - real_joints, axis=-1).mean() < 0.01  # metres


def test_rotations_are_continuous_and_bad_input_is_refused(real_joints, tmp_path):
    _, _, _, values, _ = read_bvh(bvh_text(real_joints[:60], fps=30))
    assert np.abs(np.diff(values[:, 3:], axis=0)).max() < 90  # unwrapped: no 360-degree jumps
    with pytest.raises(ModelError, match="shape"):
        bvh_text(np.zeros((10, 21, 3)))
    bad = real_joints[:5].copy()
    bad[2, 3, 1] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        write_bvh(tmp_path / "x.bvh", bad)
    assert list(tmp_path.iterdir()) == []
    write_bvh(tmp_path / "x.bvh", real_joints[:5])
    assert [p.name for p in tmp_path.iterdir()] == ["x.bvh"]

"""The HumanML3D skeletons (t2m: 22 joints, KIT-ML: 21) and the official IK/FK over them.

Facts (raw offsets, chains, foot and facing joints) are those of the official HumanML3D
preprocessing. The kinematics keep two of its conventions that the 263-d features depend on:
every chain starts from the root's rotation, even the arm chains that hang off spine3, and the
root rotation of the first frame is the identity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from .quaternion import qbetween, qinv, qmul, qrot, yaw_facing_z

# The official IK smooths the facing direction over time with this Gaussian (frames).
FORWARD_SMOOTH_SIGMA = 20.0


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class SkeletonSpec:
    """One dataset's skeleton and the joint indices its feature extraction needs."""

    name: str
    joints_num: int
    kinematic_chain: tuple[tuple[int, ...], ...]  # root first; later chains may start mid-body
    raw_offsets: np.ndarray = field(repr=False)  # (joints, 3) unit axis of each bone at rest
    face_joint_indx: tuple[int, int, int, int]  # right hip, left hip, right shoulder, left shoulder
    fid_l: tuple[int, int]  # left ankle and toe, for foot contacts
    fid_r: tuple[int, int]  # right ankle and toe
    l_idx1: int  # the two lower-leg joints whose bones give the leg length for rescaling
    l_idx2: int
    fps: float
    feet_threshold: float  # the squared-speed threshold the official preprocessing used
    joint_names: tuple[str, ...] | None = None

    @property
    def feature_dim(self) -> int:
        """4 root values, ric (J-1)*3, rotations (J-1)*6, velocities J*3, 4 foot contacts."""
        return 12 * self.joints_num - 1

    @property
    def parents(self) -> tuple[int, ...]:
        parents = [-1] * self.joints_num
        for chain in self.kinematic_chain:
            for parent, child in zip(chain[:-1], chain[1:], strict=False):
                parents[child] = parent
        return tuple(parents)

    @property
    def topological_order(self) -> tuple[int, ...]:
        """Non-root joints in chain order, so that a parent always comes before its child."""
        return tuple(j for chain in self.kinematic_chain for j in chain[1:])

    @property
    def rotation_reference(self) -> tuple[int, ...]:
        """Whose global rotation each joint's local rotation is relative to (the chain rule)."""
        ref = [0] * self.joints_num
        for chain in self.kinematic_chain:
            for k in range(2, len(chain)):
                ref[chain[k]] = chain[k - 1]
        return tuple(ref)


T2M = SkeletonSpec(
    name="t2m",
    joints_num=22,
    kinematic_chain=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15),
                     (9, 14, 17, 19, 21), (9, 13, 16, 18, 20)),
    raw_offsets=_frozen([
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ]),
    face_joint_indx=(2, 1, 17, 16),
    fid_l=(7, 10),
    fid_r=(8, 11),
    l_idx1=5,
    l_idx2=8,
    fps=20.0,
    feet_threshold=0.002,
    joint_names=(
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
        "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
        "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist",
    ),
)

KIT = SkeletonSpec(
    name="kit",
    joints_num=21,
    kinematic_chain=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4),
                     (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=_frozen([
        [0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
        [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1],
        [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1],
    ]),
    face_joint_indx=(11, 16, 5, 8),
    fid_l=(19, 20),
    fid_r=(14, 15),
    l_idx1=17,
    l_idx2=18,
    fps=12.5,
    feet_threshold=0.05,
)

SKELETONS = {"t2m": T2M, "humanml": T2M, "kit": KIT}

# Bone lengths (metres) of HumanML3D's uniform skeleton, joint by joint (the root has none).
# HumanML3D retargeted every motion to one skeleton (that of its motion 000021), so any of its
# motions carries these lengths. They were measured on frame 0 of test motion 000612 as
# recovered from its features by the official recover_from_ric, i.e. the official
# Skeleton.get_offsets_joints of that frame (../shared/reference `tgt_offsets`), and written
# here to float32 precision, which is all the dataset itself stores.
T2M_BONE_LENGTHS = _frozen([
    0.0, 0.103073984, 0.109883375, 0.13156822, 0.3936232, 0.39018822, 0.14319019, 0.43243295,
    0.4256434, 0.057364814, 0.1433818, 0.14941907, 0.21936001, 0.13748679, 0.14338283,
    0.1030392, 0.131614, 0.122984365, 0.25683984, 0.26309174, 0.26601183, 0.26987633,
])
T2M_UNIFORM_OFFSETS = _frozen(T2M.raw_offsets * T2M_BONE_LENGTHS[:, None])
# The uniform skeleton standing in a T-pose (facing +Z, left is +X, arms straight out, feet
# forward): each joint's bone direction from its parent (zero for the root), and the offsets
# those make at the uniform lengths. The BVH writer rests its skeleton in this pose and the
# add-on's retarget reads unmapped joints from it. (The raw offsets above are the dataset's
# own rest, with the arms hanging down; the features depend on them, so they stay.)
T2M_T_POSE_DIRECTIONS = _frozen([
    (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0),
    (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (1, 0, 0), (-1, 0, 0),
    (1, 0, 0), (-1, 0, 0), (1, 0, 0), (-1, 0, 0)])
T2M_T_POSE_OFFSETS = _frozen(T2M_T_POSE_DIRECTIONS * T2M_BONE_LENGTHS[:, None])


def get_spec(dataset: str | SkeletonSpec) -> SkeletonSpec:
    """The skeleton for a dataset name ("t2m"/"humanml" or "kit"), or the spec itself."""
    if isinstance(dataset, SkeletonSpec):
        return dataset
    try:
        return SKELETONS[dataset]
    except KeyError:
        raise ModelError(f"unknown dataset {dataset!r}; expected one of {sorted(SKELETONS)}") from None


def bone_vectors(spec: SkeletonSpec, joints: np.ndarray) -> np.ndarray:
    """Child minus parent for every joint, (..., J, 3); zero for the root."""
    bones = joints - joints[..., list(spec.parents), :]
    bones[..., 0, :] = 0.0
    return bones


def bone_directions(spec: SkeletonSpec, joints: np.ndarray) -> np.ndarray:
    """Unit bone vectors (T, J, 3) (root row zero); a joint sitting on its parent is an error."""
    bones = bone_vectors(spec, joints)
    length = np.linalg.norm(bones, axis=-1, keepdims=True)
    length[..., 0, :] = 1.0
    if np.any(length == 0.0):
        frame, joint, _ = np.argwhere(length == 0.0)[0]
        raise ModelError(f"joint {joint} coincides with its parent {spec.parents[joint]} at frame "
                         f"{frame}: a zero-length bone has no direction")
    return bones / length


def offsets_from_joints(spec: SkeletonSpec, frame: np.ndarray) -> np.ndarray:
    """Raw offsets scaled by one frame's bone lengths (the official get_offsets_joints)."""
    lengths = np.linalg.norm(bone_vectors(spec, np.asarray(frame, dtype=np.float64)), axis=-1)
    return spec.raw_offsets * lengths[:, None]


def gaussian_smooth(values: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian smoothing along axis 0 with edge values repeated, as SciPy's
    `gaussian_filter1d(values, sigma, axis=0, mode="nearest")` computes it (kernel radius
    `int(truncate * sigma + 0.5)`); written here so the extension does not need SciPy."""
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    values = np.asarray(values, dtype=np.float64)
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    out = np.zeros_like(values)
    for weight, shift in zip(kernel, range(2 * radius + 1), strict=True):
        out += weight * padded[shift:shift + len(values)]
    return out


def facing_directions(spec: SkeletonSpec, joints: np.ndarray, smooth: bool) -> np.ndarray:
    """Unit horizontal facing direction per frame (T, 3), as the official IK estimates it.

    The official IK unpacks face_joint_indx in the opposite hip order from the rest of the
    preprocessing, so its "across" vector is (left hip - right hip) + (right shoulder - left
    shoulder): the hips count against the shoulders. It still points to the body's right
    because the shoulders are wider than the hips. Kept as is: the features depend on it.
    """
    r_hip, l_hip, sdr_r, sdr_l = spec.face_joint_indx
    across = (joints[:, l_hip] - joints[:, r_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross([0.0, 1.0, 0.0], across)
    if smooth:
        forward = gaussian_smooth(forward, FORWARD_SMOOTH_SIGMA)
    norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    if not np.all(norm > 0.0):
        frame = int(np.argmin(norm[:, 0]))
        raise ModelError(f"no facing direction at frame {frame}: hips and shoulders (joints "
                         f"{spec.face_joint_indx}) are vertical or cancel out")
    return forward / norm


def _shortest_arcs(spec: SkeletonSpec, joints: np.ndarray) -> np.ndarray:
    """Global rotation of every bone (T, J, 4): raw offset onto bone direction; identity at the root."""
    arcs = np.zeros(joints.shape[:-1] + (4,))
    arcs[:, 0, 0] = 1.0
    arcs[:, 1:] = qbetween(spec.raw_offsets[1:], bone_directions(spec, joints)[:, 1:])
    return arcs


def inverse_kinematics(spec: SkeletonSpec, joints: np.ndarray, smooth_forward: bool = False) -> np.ndarray:
    """Per-joint local rotations (T, J, 4) that rotate the raw offsets onto the bones.

    Joint 0 holds the root rotation: the yaw that turns the (optionally smoothed) facing
    direction to +Z, replaced by the identity on frame 0, as officially. Each other joint's
    rotation is relative to the previous joint of its chain, or to the root for a chain's first
    bone. Global rotations are the shortest arcs from raw offset to bone, so each local one is
    computed directly instead of accumulated along the chain.
    """
    root = yaw_facing_z(facing_directions(spec, joints, smooth_forward))
    root[0] = (1.0, 0.0, 0.0, 0.0)
    global_rot = _shortest_arcs(spec, joints)  # (T, J, 4)
    global_rot[:, 0] = root
    reference = global_rot[:, list(spec.rotation_reference)]
    local = qmul(qinv(reference), global_rot)
    local[:, 0] = root
    return local


def forward_kinematics(spec: SkeletonSpec, local_rot: np.ndarray, root_pos: np.ndarray,
                       offsets: np.ndarray) -> np.ndarray:
    """Joint positions (T, J, 3) from local rotations (T, J, 4), root positions (T, 3) and
    bone offsets (J, 3), with the chain rule of `inverse_kinematics`."""
    joints = np.zeros(local_rot.shape[:-1] + (3,))
    joints[:, 0] = root_pos
    for chain in spec.kinematic_chain:
        rot = local_rot[:, 0]
        for parent, child in zip(chain[:-1], chain[1:], strict=False):
            rot = qmul(rot, local_rot[:, child])
            joints[:, child] = joints[:, parent] + qrot(rot, offsets[child])
    return joints


def rescale_bones(spec: SkeletonSpec, joints: np.ndarray, target_offsets: np.ndarray) -> np.ndarray:
    """Retarget a motion (T, J, 3) onto a skeleton with other bone lengths (official
    `uniform_skeleton`): every bone keeps its direction in every frame and takes the target
    length; the root path is scaled by the ratio of leg lengths (target over first frame).

    The official code does this by IK then FK; as its FK global rotations are the IK's shortest
    arcs, each new bone is that arc applied to the target offset, computed here directly.
    """
    source_offsets = offsets_from_joints(spec, joints[0])
    tgt = np.asarray(target_offsets, dtype=np.float64)

    def leg(offsets: np.ndarray) -> float:
        return float(np.abs(offsets[spec.l_idx1]).max() + np.abs(offsets[spec.l_idx2]).max())

    scale = leg(tgt) / leg(source_offsets)
    bones = qrot(_shortest_arcs(spec, joints), tgt)
    out = np.empty_like(bones)
    out[:, 0] = joints[:, 0] * scale
    parents = spec.parents
    for j in spec.topological_order:
        out[:, j] = out[:, parents[j]] + bones[:, j]
    return out

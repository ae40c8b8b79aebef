"""Retargeting math without Blender: synthetic rigs with other rest poses, rolls, scales, facings."""
from __future__ import annotations

import numpy as np
import pytest

from model_core.motion.bvh import bvh_text
from model_core.motion.rotations import axis_angle, swing
from momask_blender.errors import MomaskError
from momask_blender.rig import feet
from momask_blender.rig.bone_map import CONVENTIONS
from momask_blender.rig.plan import plan_rig
from momask_blender.rig.resample import frame_count, resample, scene_fps
from momask_blender.rig.rest import RigRest
from momask_blender.rig.retarget import (
    RetargetOptions,
    joints_from_pose,
    retarget,
    source_leg_length,
)
from momask_blender.rig.rotations import euler_from_matrix, matrix_to_quat, quat_to_matrix, rotation_angle
from momask_blender.rig.skeleton import INDEX, JOINTS, PARENTS, t_pose, to_blender
from tests.conftest import shared_path

LIMBS = [("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"),
         ("right_knee", "right_ankle"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("pelvis", "neck")]


# ----------------------------------------------------------------------------- fixtures


def walking_turn(frames: int = 120) -> np.ndarray:
    """A synthetic motion (HumanML3D axes): legs and arms swing, the body walks a full circle."""
    rest = t_pose()
    t = np.arange(frames) / 20.0
    out = np.zeros((frames, 22, 3))
    for f in range(frames):
        local = {j: np.eye(3) for j in range(22)}
        s = np.sin(2 * np.pi * 1.0 * t[f])
        x = np.array([1.0, 0, 0])
        local[1] = axis_angle(x, np.array(-0.5 * s))
        local[2] = axis_angle(x, np.array(0.5 * s))
        local[4] = axis_angle(x, np.array(0.6 * max(s, 0)))
        local[5] = axis_angle(x, np.array(0.6 * max(-s, 0)))
        local[16] = axis_angle(np.array([0, 0, 1.0]), np.array(-1.1 + 0.3 * s))
        local[17] = axis_angle(np.array([0, 0, 1.0]), np.array(1.1 + 0.3 * s))
        local[18] = axis_angle(np.array([0, 1.0, 0]), np.array(-0.8))
        local[19] = axis_angle(np.array([0, 1.0, 0]), np.array(0.8))
        yaw = 2 * np.pi * t[f] / t[-1]
        local[0] = axis_angle(np.array([0, 1.0, 0]), np.array(yaw))
        glob = {}
        pos = np.zeros((22, 3))
        for j in range(22):
            p = PARENTS[j]
            if p < 0:
                glob[j] = local[0]
                pos[j] = rest[0] + np.array([np.sin(yaw) * 0.5 * yaw, 0.02 * s, np.cos(yaw) * 0.3 * yaw])
            else:
                glob[j] = glob[p] @ local[j]
                pos[j] = pos[p] + glob[p] @ (rest[j] - rest[p])
        out[f] = pos
    return out


def make_rig(heads: np.ndarray, parents, rolls=None, world=None, names=None) -> RigRest:
    """A RigRest from armature-space heads; each bone points at its first child, rolled by `rolls`."""
    n = len(heads)
    rolls = np.zeros(n) if rolls is None else rolls
    mats = np.tile(np.eye(4), (n, 1, 1))
    tails = np.empty((n, 3))
    for b in range(n):
        kids = [c for c in range(n) if parents[c] == b]
        tip = heads[kids[0]] if kids and np.linalg.norm(heads[kids[0]] - heads[b]) > 1e-6 else \
            heads[b] + (heads[b] - heads[parents[b]] if parents[b] >= 0 else np.array([0, 0, 0.1]))
        y = (tip - heads[b]) / np.linalg.norm(tip - heads[b])
        ref = np.array([0, 0, 1.0]) if abs(y[2]) < 0.9 else np.array([1.0, 0, 0])
        xa = np.cross(y, ref)
        xa /= np.linalg.norm(xa)
        xa = axis_angle(y, np.array(rolls[b])) @ xa
        za = np.cross(xa, y)
        mats[b, :3, :3] = np.stack([xa, y, za], axis=1)
        mats[b, :3, 3] = heads[b]
        tails[b] = tip
    return RigRest(names=tuple(names or [f"b{i}" for i in range(n)]), parents=np.asarray(parents),
                   matrices=mats, tails=tails, world=np.eye(4) if world is None else world,
                   connected=np.zeros(n, bool), local_location=np.ones(n, bool))


def a_pose_rig(face_plus_y=False, scale=1.0, extra_twist=True):
    """An Unreal-named rig: A-pose arms, other proportions, random rolls, optional cm scale / +Y facing."""
    pos = to_blender(t_pose()) * np.array([1.1, 1.0, 0.95])
    for side, sign in (("left", 1), ("right", -1)):  # arms 45° down, from the shoulder
        s = pos[INDEX[f"{side}_shoulder"]]
        for j in (f"{side}_elbow", f"{side}_wrist"):
            v = pos[INDEX[j]] - s
            pos[INDEX[j]] = s + np.linalg.norm(v) * np.array([sign * np.cos(np.pi / 4), 0, -np.sin(np.pi / 4)])
    names = [CONVENTIONS["unreal"][j] for j in JOINTS]
    heads, parents = list(pos), list(PARENTS)
    if extra_twist:  # a twist bone halfway down each thigh, between thigh and calf
        for side in ("left", "right"):
            hip, knee = INDEX[f"{side}_hip"], INDEX[f"{side}_knee"]
            heads.append((pos[hip] + pos[knee]) / 2)
            parents.append(hip)
            names.append(f"thigh_twist_01_{side[0]}")
            parents[knee] = len(heads) - 1
        # keep parents-first order: move twist bones before their children by rebuilding
        order = _parents_first(parents)
        remap = {old: new for new, old in enumerate(order)}
        heads = [heads[i] for i in order]
        names = [names[i] for i in order]
        parents = [remap[parents[i]] if parents[i] >= 0 else -1 for i in order]
    world = np.eye(4)
    if face_plus_y:
        world[:3, :3] = axis_angle(np.array([0, 0, 1.0]), np.array(np.pi))
    heads = np.array(heads) / scale
    world[:3, :3] = world[:3, :3] * scale
    rng = np.random.default_rng(3)
    rig = make_rig(heads, parents, rolls=rng.uniform(-np.pi, np.pi, len(heads)), world=world, names=names)
    return rig, {j: CONVENTIONS["unreal"][j] for j in JOINTS}


def _parents_first(parents):
    order, seen = [], set()

    def visit(b):
        if b in seen:
            return
        if parents[b] >= 0:
            visit(parents[b])
        seen.add(b)
        order.append(b)

    for b in range(len(parents)):
        visit(b)
    return order


def limb_errors(bake, plan):
    idx = plan.rig.index
    out = []
    for a, b in LIMBS:
        if a in plan.bone_map and b in plan.bone_map:
            sd = bake.source[:, INDEX[b]] - bake.source[:, INDEX[a]]
            bd = bake.heads[:, idx[plan.bone_map[b]]] - bake.heads[:, idx[plan.bone_map[a]]]
            cos = (sd * bd).sum(-1) / np.linalg.norm(sd, axis=-1) / np.linalg.norm(bd, axis=-1)
            out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.concatenate(out)


def max_step_deg(bake):
    R = quat_to_matrix(bake.quats)
    rel = np.swapaxes(R[:-1], -1, -2) @ R[1:]
    return float(np.degrees(rotation_angle(rel)).max())


# ----------------------------------------------------------------------------- rotations


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(0)
    R = axis_angle(rng.normal(size=(50, 3)), rng.uniform(-3, 3, 50))
    assert np.allclose(quat_to_matrix(matrix_to_quat(R)), R, atol=1e-9)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    assert np.allclose((swing(a, b) @ a[..., None])[..., 0], b, atol=1e-9)
    assert np.allclose((swing(a, -a) @ a[..., None])[..., 0], -a, atol=1e-9)
    for order in ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"):
        e = euler_from_matrix(R, order)
        axes = {"X": np.array([1.0, 0, 0]), "Y": np.array([0, 1.0, 0]), "Z": np.array([0, 0, 1.0])}
        M = np.broadcast_to(np.eye(3), R.shape).copy()
        for c in order:  # Blender: the first letter is applied first
            M = axis_angle(np.broadcast_to(axes[c], (50, 3)), e[:, "XYZ".index(c)]) @ M
        assert np.allclose(M, R, atol=1e-9), order


# ----------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("fps,base,expected", [(20, 1.0, 80), (24, 1.0, 95), (30, 1.001, 119), (60, 1.0, 238)])
def test_resample_counts_and_times(fps, base, expected):
    rate = scene_fps(fps, base)
    x = np.arange(80, dtype=float)[:, None] / 20.0  # seconds
    y = resample(x, 20.0, rate)
    assert len(y) == frame_count(80, 20.0, rate) == expected
    assert np.allclose(y[:, 0], np.arange(expected) / rate)


# ----------------------------------------------------------------------------- retargeting


@pytest.mark.parametrize("face_plus_y,scale", [(False, 1.0), (True, 0.01)])
def test_limb_directions_follow_the_source(face_plus_y, scale):
    rig, bmap = a_pose_rig(face_plus_y=face_plus_y, scale=scale)
    plan = plan_rig(rig, bmap)
    bake = retarget(walking_turn(), plan, RetargetOptions(fps=30.0, foot_lock=False))
    err = limb_errors(bake, plan)
    assert err.mean() < 1.0 and np.percentile(err, 95) < 3.0
    # It faces the rig's way: the first frame's forward is the rig's forward.
    J = bake.source[0]
    fwd = np.cross(J[1] - J[2], [0, 0, 1.0])
    assert np.dot(fwd / np.linalg.norm(fwd), plan.forward) > 0.99
    assert max_step_deg(bake) < 60


def test_real_motion_directions_path_and_continuity():
    cases = np.load(shared_path("reference", "cases.npz"))
    src = cases["source_joints"]
    rig, bmap = a_pose_rig(scale=0.01)
    plan = plan_rig(rig, bmap)
    bake = retarget(src, plan, RetargetOptions(fps=24.0, foot_lock=False))
    err = limb_errors(bake, plan)
    assert err.mean() < 1.0 and np.percentile(err, 95) < 3.0
    assert max_step_deg(bake) < 60
    # The pelvis path is the source's scaled by the leg-length ratio.
    pelvis = bake.heads[:, plan.joint_bone[0]]
    want = bake.scale * (bake.source[:, 0] - bake.source[0, 0])
    height = np.ptp(plan.heads[:, 2])
    assert np.abs((pelvis - pelvis[0]) - want).max() < 0.02 * height
    assert bake.scale == pytest.approx(plan.leg_length / source_leg_length(bake.source))


def test_in_place_keeps_the_hips_over_the_rest_position():
    rig, bmap = a_pose_rig()
    plan = plan_rig(rig, bmap)
    bake = retarget(walking_turn(), plan, RetargetOptions(fps=20.0, root_motion="in-place"))
    pelvis = bake.heads[:, plan.joint_bone[0]]
    assert np.allclose(pelvis[:, :2], plan.heads[plan.joint_bone[0], :2])


def test_foot_lock_pins_planted_feet_and_keeps_legs_close():
    cases = np.load(shared_path("reference", "cases.npz"))
    rig, bmap = a_pose_rig()
    plan = plan_rig(rig, bmap)
    free = retarget(cases["source_joints"], plan, RetargetOptions(fps=20.0, foot_lock=False))
    locked = retarget(cases["source_joints"], plan, RetargetOptions(fps=20.0, foot_lock=True))
    assert locked.contacts.any()
    for side, ankle in ((0, "left_ankle"), (1, "right_ankle")):
        a = locked.heads[:, plan.joint_bone[INDEX[ankle]]]
        planted = locked.contacts[:, side]
        steady = planted[1:] & planted[:-1]
        drift = np.linalg.norm(np.diff(a, axis=0), axis=-1)[steady]
        assert drift.max() < 0.01
    ang = []
    for a, b in LIMBS[:4]:
        i, k = plan.joint_bone[INDEX[a]], plan.joint_bone[INDEX[b]]
        d0 = free.heads[:, k] - free.heads[:, i]
        d1 = locked.heads[:, k] - locked.heads[:, i]
        cos = (d0 * d1).sum(-1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
        ang.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    # Pinning a foot that slid a few cm straightens or bends a nearly straight knee a little more.
    assert np.percentile(ang, 95) < 10 and np.max(ang) < 20


def test_contacts_from_a_standing_motion():
    still = np.repeat(to_blender(t_pose())[None], 30, axis=0)
    contacts = feet.detect_contacts(still, 20.0)
    assert contacts.all()


def test_blocky_rig_bakes_what_it_maps():
    # Body at the hips, a head, whole-limb arms hanging down, whole-leg legs: 6 bones, 10 units tall.
    heads = np.array([[0, 0, 6.3], [0, 0, 12.6], [-3.15, 0, 11.5], [3.15, 0, 11.5], [1.05, 0, 6.3], [-1.05, 0, 6.3]])
    tails = heads.copy()
    tails[0, 2], tails[1, 2] = 12.6, 16.8
    tails[2:4, 2], tails[4:6, 2] = 6.3, 0.0
    rig = make_rig(heads, [-1, 0, 0, 0, 0, 0], names=["Body", "Head", "Arm_Left", "Arm_Right", "Leg_Right",
                                                      "Leg_Left"])
    rig = RigRest(names=rig.names, parents=rig.parents, matrices=rig.matrices, tails=tails, world=rig.world,
                  connected=rig.connected, local_location=rig.local_location)
    bmap = {"pelvis": "Body", "head": "Head", "left_shoulder": "Arm_Left", "right_shoulder": "Arm_Right",
            "left_hip": "Leg_Left", "right_hip": "Leg_Right"}
    plan = plan_rig(rig, bmap)
    assert np.allclose(plan.forward, [0, 1, 0])  # its left arm is at -x: it faces +Y
    bake = retarget(walking_turn(), plan, RetargetOptions(fps=20.0))
    # The whole arm follows shoulder → wrist of the source.
    idx = plan.rig.index
    Q = bake.world_rotations[:, idx["Arm_Left"]]
    arm = (Q @ (tails[2] - heads[2]))
    src = bake.source[:, INDEX["left_wrist"]] - bake.source[:, INDEX["left_shoulder"]]
    cos = (arm * src).sum(-1) / np.linalg.norm(arm, axis=-1) / np.linalg.norm(src, axis=-1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0


def test_missing_pelvis_is_an_error():
    rig, bmap = a_pose_rig()
    del bmap["pelvis"]
    with pytest.raises(MomaskError, match="pelvis"):
        plan_rig(rig, bmap)


def test_bad_joints_are_rejected():
    rig, bmap = a_pose_rig()
    plan = plan_rig(rig, bmap)
    bad = walking_turn(10)
    bad[3, 4, 1] = np.nan
    with pytest.raises(MomaskError, match="NaN"):
        retarget(bad, plan)
    with pytest.raises(MomaskError, match="shape"):
        retarget(np.zeros((10, 21, 3)), plan)


def test_inverse_retarget_recovers_directions():
    rig, bmap = a_pose_rig(scale=0.01, face_plus_y=True)
    plan = plan_rig(rig, bmap)
    bake = retarget(walking_turn(), plan, RetargetOptions(fps=20.0, foot_lock=False))
    back = joints_from_pose(plan, bake.world_rotations, bake.heads[:, plan.joint_bone[0]])
    for a, b in LIMBS:
        s = bake.source[:, INDEX[b]] - bake.source[:, INDEX[a]]
        r = back[:, INDEX[b]] - back[:, INDEX[a]]
        cos = (s * r).sum(-1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(r, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 3, (a, b)


def test_bvh_export_has_the_skeleton_and_every_frame():
    text = bvh_text(walking_turn(40))
    assert text.startswith("HIERARCHY\nROOT Hips")
    assert "Frames: 40" in text and "Frame Time: 0.050000" in text
    assert len(text.split("MOTION")[1].strip().splitlines()) == 42
    first = text.split("Frame Time: 0.050000\n")[1].splitlines()[0].split()
    assert len(first) == 3 + 22 * 3

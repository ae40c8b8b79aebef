"""The bake plan on detected rigs (split pelvis, constraint drivers, IK goals) and the foot lock
that pins heels and balls, without Blender."""
from __future__ import annotations

import numpy as np
import pytest

from momask_blender.rig import feet
from momask_blender.rig.bone_map import detect
from momask_blender.rig.plan import forward_kinematics, ik_locations, plan_rig
from momask_blender.rig.rest import BoneInfo, BoneTree, ancestors, lowest_common, subtree
from momask_blender.rig.retarget import RetargetOptions, retarget
from momask_blender.rig.skeleton import INDEX, to_blender
from tests.rig_factory import Spec, build, rest_from_bones
from tests.test_retarget import LIMBS, a_pose_rig, walking_turn


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_one_bone_tree_for_detection_plans_and_locks():
    # root ─ hips ─ thigh.L ─ shin.L ─ foot.L ; hips ─ spine ─ head ; a prop whose parent is not a bone
    bones = [BoneInfo("root", None), BoneInfo("hips", "root"), BoneInfo("thigh.L", "hips"),
             BoneInfo("shin.L", "thigh.L"), BoneInfo("foot.L", "shin.L"), BoneInfo("spine", "hips"),
             BoneInfo("head", "spine"), BoneInfo("prop", "gone")]
    tree = BoneTree(bones)
    i = tree.index
    assert list(tree.parents) == [-1, 0, 1, 2, 3, 1, 5, -1]
    assert tree.ancestors(i["foot.L"]) == [3, 2, 1, 0] and tree.depth(i["head"]) == 3
    assert sorted(tree.subtree(i["hips"])) == [1, 2, 3, 4, 5, 6]
    assert sorted(subtree(tree.parents, i["hips"], stop=i["shin.L"])) == [1, 2, 5, 6]  # the shin and below left out
    assert tree.path(i["hips"], i["foot.L"]) == [1, 2, 3, 4] and tree.path(i["spine"], i["foot.L"]) == []
    assert tree.lca([i["foot.L"], i["head"]]) == i["hips"] and lowest_common(tree.parents, [4, 3]) == 3
    assert tree.lca([i["head"], i["prop"]]) is None and ancestors(tree.parents, i["prop"]) == []


def test_split_pelvis_moves_the_body_through_the_common_ancestor(cases):
    bones, truth = build(Spec(naming="japanese", split_pelvis=True, helpers=True))
    rig = rest_from_bones(bones)
    found = detect(rig.bone_infos())
    plan = plan_rig(rig, found.bone_map)
    assert rig.names[plan.mover] == "センター"  # moves the whole body; not the floor root, not 下半身
    bake = retarget(cases["source_joints"], plan, RetargetOptions(fps=20.0, foot_lock=False))
    idx = rig.index
    # The pelvis (下半身) follows the source's path, scaled by leg length; 上半身 turns the spine.
    path = bake.heads[:, idx["下半身"], :2] - bake.heads[0, idx["下半身"], :2]
    want = bake.scale * (bake.source[:, 0, :2] - bake.source[0, 0, :2])
    assert np.abs(path - want).max() < 0.02
    for p, c in LIMBS:
        if p in truth and c in truth:
            got = bake.heads[:, idx[truth[c]]] - bake.heads[:, idx[truth[p]]]
            src = bake.source[:, INDEX[c]] - bake.source[:, INDEX[p]]
            assert np.percentile(_angles(got, src), 95) < 12, (p, c)
    assert bake.root_bone == "センター" and "下半身" in bake.bone_names and "上半身" in bake.bone_names


def test_a_driven_bone_is_keyed_through_its_driver():
    bones, truth = build(Spec(naming="latin", floor_root=True))
    root = bones[0].name
    controls = [b for b in bones if b.name in (truth["left_knee"], truth["left_hip"])]
    extra = [type(b)(b.name + "_ctrl", root, b.head, b.tail) for b in controls]
    rig = rest_from_bones(bones + extra, drivers={b.name: b.name + "_ctrl" for b in controls})
    plan = plan_rig(rig, detect(rig.bone_infos()).bone_map)
    assert {rig.names[a]: rig.names[b] for a, b in plan.keyed.items()} == {b.name: b.name + "_ctrl" for b in controls}
    bake = retarget(walking_turn(60), plan, RetargetOptions(fps=20.0, foot_lock=True))
    assert truth["left_knee"] + "_ctrl" in bake.bone_names and truth["left_knee"] not in bake.bone_names
    idx = rig.index
    for b in controls:  # the driver turns exactly as its bone should, foot lock included
        assert np.allclose(bake.world_rotations[:, idx[b.name + "_ctrl"]], bake.world_rotations[:, idx[b.name]])


def test_ik_targets_are_keyed_where_the_chain_ends():
    bones, truth = build(Spec(naming="meaningless", helpers=True))
    goals = [b.name for b in bones if b.helper]
    rig0 = rest_from_bones(bones)
    ankle = rig0.heads_world[rig0.index[truth["left_ankle"]]]
    goal = min(goals, key=lambda n: np.linalg.norm(rig0.heads_world[rig0.index[n]] - ankle))
    owner = next(b.parent for b in bones if b.name == truth["left_ankle"])
    rig = rest_from_bones(bones, iks=[(owner, 2, goal)])
    plan = plan_rig(rig, detect(rig.bone_infos()).bone_map)
    assert [rig.names[g.target] for g in plan.ik_goals] == [goal]
    bake = retarget(walking_turn(40), plan, RetargetOptions(fps=20.0, foot_lock=False))
    loc = bake.locations[goal]
    # the goal's head, moved by that location channel, is where the owner's tail is in the bake
    i, o = rig.index[goal], rig.index[owner]
    rest_tail = rig.tails_world[o] - rig.heads_world[o]
    tail = bake.heads[:, o] + np.einsum("fij,j->fi", bake.world_rotations[:, o], rest_tail)
    head = bake.heads[:, i] + loc @ rig.matrices[i, :3, :3].T  # root-parented, local location
    assert np.abs(head - tail).max() < 1e-6
    assert set(ik_locations(plan, bake.world_rotations, bake.heads)) == {i}


def _skate(points: np.ndarray, fps: float, planted: np.ndarray) -> float:
    v = np.linalg.norm(np.diff(points[..., :2], axis=0), axis=-1) * fps
    m = planted[1:] & planted[:-1]
    return float(v[m].mean()) if m.any() else 0.0


def test_heels_and_balls_stay_planted_and_legs_stay_close_to_the_motion(cases):
    rig, bmap = a_pose_rig()
    plan = plan_rig(rig, bmap)
    assert all(f.ball is not None for f in plan.feet)  # ball_l / ball_r
    opts = dict(fps=30.0)
    free = retarget(cases["source_joints"], plan, RetargetOptions(foot_lock=False, **opts))
    locked = retarget(cases["source_joints"], plan, RetargetOptions(foot_lock=True, **opts))
    idx = rig.index
    src_leg = 0.82
    for side, s in ((0, "l"), (1, "r")):
        for k, (bone, joint) in enumerate(((f"foot_{s}", "ankle"), (f"ball_{s}", "foot"))):
            planted = (locked.contacts if k == 0 else locked.ball_contacts)[:, side]
            assert planted.any()
            src = locked.source[:, INDEX[f"{'left' if s == 'l' else 'right'}_{joint}"]]
            ours = _skate(locked.heads[:, idx[bone]], 30.0, planted) / plan.leg_length
            theirs = _skate(src, 30.0, planted) / src_leg
            unlocked = _skate(free.heads[:, idx[bone]], 30.0, planted) / plan.leg_length
            assert ours <= theirs + 1e-3 and ours < 0.5 * unlocked, (bone, ours, theirs, unlocked)
    for p, c in LIMBS[:4] + [("left_ankle", "left_foot"), ("right_ankle", "right_foot")]:
        i, k = plan.joint_bone[INDEX[p]], plan.joint_bone[INDEX[c]]
        turn = _angles(free.heads[:, k] - free.heads[:, i], locked.heads[:, k] - locked.heads[:, i])
        assert turn.max() <= feet.MAX_LEG_TURN + 0.1, (p, c, turn.max())  # thigh, shin and foot
    for j in ("left_hip", "right_hip"):  # no stretched legs: hip → ankle within the leg's length
        side = j.split("_")[0]
        hip, ankle = plan.joint_bone[INDEX[j]], plan.joint_bone[INDEX[f"{side}_ankle"]]
        knee = plan.joint_bone[INDEX[f"{side}_knee"]]
        full = np.linalg.norm(plan.heads[knee] - plan.heads[hip]) + np.linalg.norm(plan.heads[ankle] - plan.heads[knee])
        assert (np.linalg.norm(locked.heads[:, ankle] - locked.heads[:, hip], axis=-1) <= full * 1.0001).all()


def test_contacts_per_point_from_a_rolling_foot():
    """The heel lifts while the ball stays down: only the ball is planted then."""
    J = np.repeat(_standing()[None], 40, axis=0)
    lift = np.clip((np.arange(40) - 15) / 10, 0, 1) * 0.08
    J[:, INDEX["left_ankle"], 2] += lift
    planted = feet.detect_points(J, 20.0)
    assert planted[:10, 0].all()                               # both planted at first
    assert planted[30:, 0, 1].all() and not planted[30:, 0, 0].any()  # then the ball only
    assert (planted[:, 1] == planted[:, 1][:1]).all()          # the right foot never moved


def _standing() -> np.ndarray:
    from momask_blender.rig.skeleton import t_pose

    return to_blender(t_pose())


def test_pins_ease_in_and_out_of_a_contact():
    pos = np.cumsum(np.full((20, 3), 0.01), axis=0)
    planted = np.zeros(20, bool)
    planted[8:12] = True
    weight, pin = feet.pins(pos, planted, blend=3)
    assert (weight[8:12] == 1).all() and weight[0] == 0 and 0 < weight[6] < weight[7] < 1
    assert np.allclose(pin[9], pos[8:12].mean(axis=0))


@pytest.mark.parametrize("angle", [5.0, 30.0, 120.0])
def test_foot_turns_are_limited(angle):
    from model_core.motion.rotations import axis_angle
    from momask_blender.rig.rotations import rotation_angle

    R = axis_angle(np.array([[0.0, 1.0, 0.0]]), np.radians([angle]))
    out = feet._limited(R, feet.MAX_FOOT_TURN)
    assert np.degrees(rotation_angle(out))[0] == pytest.approx(min(angle, feet.MAX_FOOT_TURN), abs=1e-6)


def test_forward_kinematics_of_the_plan_is_the_rest_pose_at_rest():
    rig, bmap = a_pose_rig()
    plan = plan_rig(rig, bmap)
    Q = np.broadcast_to(np.eye(3), (2, len(rig.names), 3, 3))
    assert np.allclose(forward_kinematics(plan, Q, np.zeros((2, 3)))[0], plan.heads)

"""Directing from the scene, the pure part: frames, the spaces between scene, rig and model, paths
timed along their length, targets with the names of what made them, and reaches met on a rig."""
from __future__ import annotations

import numpy as np
import pytest

from momask_blender.errors import MomaskError
from momask_blender.rig import directing as rd
from momask_blender.rig import windows
from momask_blender.rig.plan import plan_rig
from momask_blender.rig.reach import reach_on_rig
from momask_blender.rig.retarget import RetargetOptions, retarget
from momask_blender.rig.skeleton import INDEX, from_blender, to_blender
from tests.test_inpaint import _pose_matrices
from tests.test_retarget import a_pose_rig, walking_turn


@pytest.mark.parametrize("fps", [24.0, 25.0, 30 / 1.001, 60.0])
def test_scene_and_model_frames(fps):
    for model in (0, 7, 120, 1999):
        assert rd.model_frame(rd.scene_frame(model, 11, fps), 11, fps) == model
    assert rd.model_frame(11, 11, fps) == 0 and rd.model_frame(11 + fps, 11, fps) == 20
    every = rd.nearest_per_model_frame(np.arange(11, 11 + 2 * fps), 11, fps)  # keys on every scene frame
    assert [rd.model_frame(f, 11, fps) for f in every] == list(range(len(every)))


@pytest.fixture(scope="module", params=[(False, 1.0), (True, 0.01)], ids=["metres", "cm-facing-plus-y"])
def plan(request):
    rig, bone_map = a_pose_rig(face_plus_y=request.param[0], scale=request.param[1])
    return plan_rig(rig, bone_map)


def test_placement_puts_the_model_start_on_the_rig(plan):
    placement = rd.placement_for(plan)
    points = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(placement.to_model(placement.to_rig(points)), points, atol=1e-12)
    pelvis_world = plan.heads[plan.joint_bone[0]]
    start = placement.to_rig(np.array([0.0, 0.9, 0.0]))
    np.testing.assert_allclose(start[[0, 2]], rd.rig_space(pelvis_world, plan)[[0, 2]], atol=1e-9)
    ahead = to_blender(placement.to_rig(np.array([0.0, 0.9, 1.0])) - start)  # model +Z, in world axes
    np.testing.assert_allclose(ahead / np.linalg.norm(ahead), plan.forward, atol=1e-9)


def test_a_placed_bake_lands_where_rig_space_says(plan):
    """Rig space is the space range edits read a rig in: a motion baked from it reads back the same."""
    motion = rd.Placement(yaw=0.7, start=(0.4, -0.3)).to_rig(walking_turn(40))
    bake = retarget(motion, plan, RetargetOptions(fps=20.0, foot_lock=False, placed=True))
    back = windows.rig_joints(plan, _pose_matrices(plan, bake))
    np.testing.assert_allclose(back[:, 0], motion[:, 0], atol=1e-6)
    for a, b in (("left_hip", "left_knee"), ("right_elbow", "right_wrist"), ("spine3", "neck")):
        d0, d1 = (m[:, INDEX[b]] - m[:, INDEX[a]] for m in (motion, back))
        cos = (d0 * d1).sum(-1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
        assert cos.min() > 0.99, (a, b)
    world = rd.rig_space(bake.heads[:, plan.joint_bone[0]], plan)  # the pelvis bone's head, world → rig space
    np.testing.assert_allclose(world, motion[:, 0], atol=1e-6)


def test_paths_are_timed_evenly_or_by_waypoints():
    line = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])  # 3 m long
    even = rd.path_targets(line, 10, 40, "P")
    assert [t.frame for t in even] == list(range(10, 41))
    steps = np.linalg.norm(np.diff([t.position for t in even], axis=0), axis=1)
    assert np.allclose(steps[np.r_[0:9, 11:30]], 0.1) and even[-1].position == (1.0, 2.0)
    stop = rd.Target(20, "pelvis", (1.0, -0.05), "xz", "the waypoint 'W'")  # 1 m along the path by frame 20
    timed = rd.path_targets(line, 10, 40, "P", [stop])
    assert 20 not in [t.frame for t in timed] and len(timed) == 30
    at = {t.frame: np.array(t.position) for t in timed}
    assert np.allclose(at[15], [0.5, 0.0]) and np.allclose(at[30], [1.0, 1.0])
    facing = [t for t in rd.path_targets(line, 10, 40, "P", skip=[30], face=True) if t.joint == rd.FACING]
    angles = {t.frame: t.position[0] for t in facing}
    assert set(angles) == {10, 14, 18} and np.allclose(angles[10], np.pi / 2)  # along +X; none near the key
    made = rd.constraints_from(rd.to_model(facing, rd.Placement(yaw=0.5, start=(0.0, 0.0))), 50, "")
    assert [round(c.angle, 6) for c in made] == [round(np.pi / 2 - 0.5, 6)] * 3


@pytest.mark.parametrize(("line", "args", "waypoints", "message"), [
    ([[1.0, 1.0], [1.0, 1.0]], (0, 10), [], "has no length"),
    ([[0.0, 0.0]], (0, 10), [], "has no length"),
    ([[0.0, 0.0], [1.0, 0.0]], (10, 10), [], r"ends \(frame 10\) before it starts"),
    ([[0.0, 0.0], [2.0, 0.0]], (0, 30), [rd.Target(10, "pelvis", (1.5, 0), "xz", "the waypoint 'A'"),
                                         rd.Target(20, "pelvis", (0.5, 0), "xz", "the waypoint 'B'")],
     "the waypoint 'B' lies behind"),
])
def test_bad_paths_are_named(line, args, waypoints, message):
    with pytest.raises(MomaskError, match=message) as err:
        rd.path_targets(np.array(line), *args, "Route", waypoints)
    assert "Route" in str(err.value)


def test_targets_become_constraints_and_conflicts_name_both_sources():
    a = rd.Target(12, "pelvis", (1.0, 2.0), "xz", "the waypoint 'A'")
    key = rd.Target(12, "pelvis", (1.0, 0.9, 2.0), "xyz", "the key pose at frame 15")
    made = rd.constraints_from([a, key], 20, "frames 1-24")
    assert len(made) == 1 and made[0].axes == "xyz"
    with pytest.raises(MomaskError, match="the waypoint 'A' and the waypoint 'B' give the pelvis two"):
        rd.constraints_from([a, rd.Target(12, "pelvis", (1.5, 2.0), "xz", "the waypoint 'B'")], 20, "")
    with pytest.raises(MomaskError, match=r"the waypoint 'A' falls outside the generated motion \(frames 1-9\)"):
        rd.constraints_from([a], 12, "frames 1-9")
    with pytest.raises(MomaskError, match="not a finite number"):
        rd.constraints_from([rd.Target(1, "head", (0.0, np.nan, 0.0), "xyz", "X")], 20, "")


def test_scene_targets_merge_as_constraint_files_do():
    from model_core.control.constraints import SAME, Constraint, merge_constraints

    a = rd.Target(12, "pelvis", (1.0, 2.0), "xz", "the waypoint 'A'")
    key = rd.Target(12, "pelvis", (1.0 + SAME / 2, 0.9, 2.0), "xyz", "the key pose at frame 15")
    made = rd.constraints_from([a, key], 20, "")
    assert made == merge_constraints([Constraint(12, "pelvis", (1.0, 2.0), "xz"),
                                      Constraint(12, "pelvis", (1.0 + SAME / 2, 0.9, 2.0))]) == [
        Constraint(12, "pelvis", (1.0 + SAME / 2, 0.9, 2.0))]
    far = rd.Target(12, "pelvis", (1.0 + 2 * SAME, 0.9, 2.0), "xyz", "the key pose at frame 15")
    with pytest.raises(MomaskError, match="the waypoint 'A' and the key pose at frame 15 give the pelvis"):
        rd.constraints_from([a, far], 20, "")
    turn = [rd.Target(12, rd.FACING, (1.0,), "yaw", "the path 'P' (facing)"),
            rd.Target(12, rd.FACING, (1.5,), "yaw", "the constraint facing 1.5 rad at frame 12 of c.json")]
    with pytest.raises(MomaskError, match="the path 'P' .facing. and the constraint .* two different facings"):
        rd.constraints_from(turn, 20, "")
    with pytest.raises(MomaskError, match="the waypoint 'A': constraint pelvis at frame 20000"):
        rd.constraints_from([rd.Target(20000, "pelvis", (1.0, 2.0), "xz", "the waypoint 'A'")], 10**9, "")


def test_key_targets_cover_the_mapped_joints_only(plan):
    joints = walking_turn(3)
    made = rd.key_targets(joints[1:], [4, 9], [5.0, 11.0], [0, 20, 21])
    assert [(t.frame, t.joint) for t in made] == [(4, "pelvis"), (4, "left_wrist"), (4, "right_wrist"),
                                                   (9, "pelvis"), (9, "left_wrist"), (9, "right_wrist")]
    assert made[1].source == "the key pose at frame 5" and made[1].position == tuple(joints[1, 20])


def test_reach_on_the_rig_touches_the_target_and_eases(plan):
    bake = retarget(walking_turn(60), plan, RetargetOptions(fps=20.0, foot_lock=False))
    hand = plan.joint_bone[INDEX["left_wrist"]]
    elbow = plan.joint_bone[INDEX["left_elbow"]]
    goal = bake.heads[30, hand] + 0.25 * (bake.heads[30, elbow] - bake.heads[30, hand])  # closer in: reachable
    reached = reach_on_rig(bake, plan, [(30, INDEX["left_wrist"], goal)], width=10)
    np.testing.assert_allclose(reached.heads[30, hand], goal, atol=1e-6 * max(1.0, np.abs(goal).max()))
    np.testing.assert_allclose(reached.quats[:19], bake.quats[:19], atol=1e-9)  # untouched far from it
    np.testing.assert_allclose(reached.quats[42:], bake.quats[42:], atol=1e-9)
    moved = np.linalg.norm(reached.heads[:, hand] - bake.heads[:, hand], axis=1)
    assert np.all(np.diff(moved[20:31]) >= -1e-9)  # eases in


def test_model_space_targets_keep_their_source():
    placement = rd.Placement(yaw=np.pi / 2, start=(1.0, 2.0))
    t = rd.Target(3, "pelvis", (2.0, 2.0), "xz", "the path 'P'")
    (moved,) = rd.to_model([t], placement)
    assert moved.source == t.source and np.allclose(moved.position, (0.0, 1.0), atol=1e-12)
    assert np.allclose(from_blender(to_blender(np.ones(3))), 1.0)

"""Constraints: parsing untrusted JSON, the smooth correction curves, and the analytic pass that
meets them on a real motion (NumPy only, no model)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_core import ModelError
from model_core.control import JOINT_NAMES, Constraint, parse_constraints
from model_core.control.curves import held_curve, local_curve, runs, smoothstep
from model_core.control.direct import direct_joints, errors
from model_core.control.pose import two_bone
from model_core.control.targets import Targets
from model_core.motion.skeleton import T2M

# ----------------------------------------------------------------------------- parsing

finite = st.floats(-50, 50, allow_nan=False)
one = st.one_of(
    st.builds(lambda f, j, p: {"frame": f, "joint": j, "position": p}, st.integers(0, 500),
              st.sampled_from(JOINT_NAMES), st.lists(finite, min_size=3, max_size=3)),
    st.builds(lambda f, j, p: {"frame": f, "joint": j, "position": p, "axes": "xz"}, st.integers(0, 500),
              st.sampled_from(JOINT_NAMES), st.lists(finite, min_size=2, max_size=2)))


@settings(max_examples=60, deadline=None)
@given(st.lists(one, max_size=12))
def test_valid_documents_parse_to_one_constraint_per_joint_and_frame(items):
    try:
        parsed = parse_constraints({"constraints": items})
    except ModelError as err:  # only a real disagreement for one joint at one frame may fail
        assert "two different targets" in str(err)
        return
    assert len({(c.frame, c.joint) for c in parsed}) == len(parsed) <= len(items)
    for c in parsed:
        given_here = [i for i in items if (i["frame"], i["joint"]) == (c.frame, c.joint)]
        assert any(tuple(float(v) for v in i["position"]) == c.position for i in given_here)
        assert len(c.position) == (2 if c.axes == "xz" else 3)


def _doc(**change) -> dict:
    item = {"frame": 40, "joint": "left_wrist", "position": [0.3, 1.2, 0.9], **change}
    return {"constraints": [{"frame": 0, "joint": "pelvis", "position": [0, 0], "axes": "xz"}, item]}


@pytest.mark.parametrize(("doc", "match"), [
    (_doc(joint="left_wirst"), "unknown joint 'left_wirst'"),
    (_doc(position=[0.3, float("nan"), 0.9]), "NaN or infinity"),
    (_doc(position=[0.3, float("inf"), 0.9]), "NaN or infinity"),
    (_doc(axes="xz"), "axes 'xz' takes 2 numbers, got 3"),
    (_doc(axes="y"), "axes must be"),
    (_doc(frame="40"), "frame must be a whole number"),
    (_doc(frame=40.5), "frame must be a whole number"),
    (_doc(frame=True), "frame must be a whole number"),
    (_doc(frame=-1), "frame -1 is outside"),
    (_doc(position="0.3 1.2 0.9"), "position must be a list"),
    (_doc(position=[0.3, True, 0.9]), "position must be a list"),
    (_doc(joint=20), "joint must be a joint name"),
    (_doc(postion=[1, 2, 3]), "unknown keys"),
    ({"constraints": [{"frame": 1}]}, "missing"),
    ({"constraints": "x"}, "must be a list"),
    ({"targets": []}, "constraints"),
])
def test_bad_constraints_name_the_one_at_fault(doc, match):
    with pytest.raises(ModelError, match=match) as caught:
        parse_constraints(doc)
    assert "constraint 0 " in str(caught.value) or "constraint 1 " in str(caught.value) or "constraints" in str(
        caught.value)


def test_two_targets_for_one_joint_at_one_frame():
    same = {"frame": 3, "joint": "head", "position": [0, 1.6, 0]}
    assert len(parse_constraints([same, dict(same)])) == 1
    agreeing = {"frame": 3, "joint": "head", "position": [0, 0], "axes": "xz"}
    assert parse_constraints([agreeing, same]) == [Constraint(3, "head", (0.0, 1.6, 0.0))]
    with pytest.raises(ModelError, match="constraints 0 and 1 give head at frame 3 two different targets"):
        parse_constraints([same, {**same, "position": [0, 1.5, 0]}])


def test_one_tolerance_and_messages_by_number_or_by_label():
    from model_core.control.constraints import SAME, merge_constraints

    head = {"frame": 3, "joint": "head", "position": [0, 1.6, 0]}
    assert len(parse_constraints([head, {**head, "position": [0, 1.6 + SAME / 2, 0]}])) == 1
    with pytest.raises(ModelError, match=r"constraints 0 and 1 give head at frame 3 two different targets, "
                                         r"\(0, 1.6, 0\) and \(0, 1.6002, 0\)"):
        parse_constraints([head, {**head, "position": [0, 1.6 + 2 * SAME, 0]}])
    two = [Constraint(3, "left_wrist", (0.1, 0.2), "xz"), Constraint(3, "left_wrist", (0.3, 1.0, 0.2))]
    with pytest.raises(ModelError, match="the empty 'A' and the empty 'B' give the left wrist two different targets: "
                                         "two different places at the same moment"):
        merge_constraints(two, labels=["the empty 'A'", "the empty 'B'"])
    with pytest.raises(ModelError, match="2 constraints, 2 numbers and 1 labels"):
        merge_constraints(two, labels=["the empty 'A'"])


def test_frames_outside_a_known_length():
    with pytest.raises(ModelError, match="frame 40 is outside the motion"):
        parse_constraints(_doc(), frames=40)
    assert len(parse_constraints(_doc(), frames=41)) == 2


# ----------------------------------------------------------------------------- curves


def test_held_curve_meets_anchors_and_stays_flat_outside():
    curve = held_curve([10, 30, 31], [[1.0], [2.0], [2.5]], 50)[:, 0]
    assert curve[10] == pytest.approx(1.0) and curve[30] == pytest.approx(2.0) and curve[31] == pytest.approx(2.5)
    assert np.all(curve[:11] == 1.0) and np.all(curve[31:] == 2.5)


def test_local_curve_returns_to_zero_and_keeps_inside_bounds():
    curve = local_curve([20], [[1.0]], 60, width=8)[:, 0]
    assert curve[20] == pytest.approx(1.0) and np.all(curve[:13] == 0) and np.all(curve[28:] == 0)
    assert np.all(np.abs(np.diff(curve)) < 0.25)  # eases in and out, no step
    inside = local_curve([20], [[1.0]], 60, width=8, bounds=(17, 22))[:, 0]
    assert np.all(inside[:18] == 0) and np.all(inside[22:] == 0) and inside[20] == pytest.approx(1.0)


def test_runs_and_smoothstep():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)] and runs(np.zeros(3, bool)) == []
    assert list(smoothstep(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]))) == [0.0, 0.0, 0.5, 1.0, 1.0]
    x = np.linspace(0, 1, 101)
    assert np.all(np.diff(smoothstep(x)) >= 0) and smoothstep(0.01) < 0.001 and smoothstep(0.99) > 0.999


# ----------------------------------------------------------------------------- two-bone IK


def test_two_bone_reaches_keeps_lengths_and_bends_as_before():
    rng = np.random.default_rng(3)
    base, mid, tip = (rng.normal(size=(200, 3)) for _ in range(3))
    upper, lower = np.linalg.norm(mid - base, axis=-1), np.linalg.norm(tip - mid, axis=-1)
    distance = np.abs(upper - lower) + rng.uniform(0.05, 0.95, 200) * 2 * np.minimum(upper, lower)  # in reach
    goal = base + distance[:, None] * _unit(rng.normal(size=(200, 3)))
    new_mid, reached = two_bone(base, mid, tip, goal)
    assert np.allclose(np.linalg.norm(new_mid - base, axis=-1), upper)
    assert np.allclose(np.linalg.norm(reached - new_mid, axis=-1), lower) and np.allclose(reached, goal)
    one = np.array([two_bone(base[i], mid[i], tip[i], goal[i])[0] for i in range(5)])  # a chain at a time
    assert np.allclose(one, new_mid[:5], atol=1e-12)
    # the bend plane and side are kept: mid stays on its side of the base-goal line, in its plane
    normal = np.cross(goal - base, mid - base)
    assert np.all((np.cross(goal - base, new_mid - base) * normal).sum(-1) > 0)
    # straight along the goal line, the tip off it: the middle joint goes the other way, as it was bent
    out, _ = two_bone(np.zeros(3), np.array([0.0, 0.3, 0.0]), np.array([0.25, 0.3, 0.0]), np.array([0.0, 0.4, 0.0]))
    assert out[0] < 0 and np.isclose(np.linalg.norm(out), 0.3)
    # out of reach: stretched towards it no further than the longest it may reach; on the base: unchanged
    _, far = two_bone(np.zeros(3), np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.3, 0.3]), np.array([2.0, 0, 0]),
                      longest=0.5)
    assert np.allclose(far, [0.5, 0, 0])
    same = two_bone(np.zeros(3), np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.3, 0.3]), np.zeros(3))
    assert np.allclose(same[0], [0, 0.3, 0]) and np.allclose(same[1], [0, 0.3, 0.3])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- the analytic pass on a real motion


@pytest.fixture(scope="module")
def real(cases) -> np.ndarray:
    return cases["source_joints"].astype(np.float64)


def _accel(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[2:] - 2 * joints[1:-1] + joints[:-2], axis=-1) * 400.0


def test_key_poses_path_and_reach_are_met_smoothly(real):
    motion = real[60:180] - real[60, 0] * [1, 0, 1]
    keys = {20: real[30], 90: real[110]}
    cons = [Constraint(k, JOINT_NAMES[j], tuple(p[j])) for k, p in keys.items() for j in range(22)]
    cons += [Constraint(f, "pelvis", (0.01 * f, 0.02 * f), "xz") for f in range(40, 80, 4)]
    cons += [Constraint(60, "left_wrist", (0.5, 1.3, 1.6))]
    out = direct_joints(motion, Targets.from_constraints(cons))
    assert errors(out, Targets.from_constraints(cons)).max() < 1e-3
    acc = _accel(out)
    near = np.zeros(len(acc), bool)
    for k in keys:
        near[k - 7: k + 6] = True
    assert acc[near].max() <= 2.0 * np.percentile(acc[~near], 95)
    # far from every constraint the pose (relative to the root) is the motion's own
    far = slice(112, 120)
    rel = lambda j: j[far] - j[far, :1]  # noqa: E731
    np.testing.assert_allclose(np.linalg.norm(rel(out), axis=-1), np.linalg.norm(rel(motion), axis=-1), atol=1e-6)


def test_reach_keeps_bone_lengths_when_in_reach(real):
    motion = real[:120] - real[0, 0] * [1, 0, 1]
    shoulder = motion[60, 16]
    goal = shoulder + np.array([0.2, -0.1, 0.35])  # 42 cm from the shoulder: the arm is longer
    out = direct_joints(motion, Targets.from_constraints([Constraint(60, "left_wrist", tuple(goal))]))
    assert np.linalg.norm(out[60, 20] - goal) < 1e-3
    lengths = lambda j: np.linalg.norm(j[:, 1:] - j[:, list(T2M.parents[1:])], axis=-1)  # noqa: E731
    np.testing.assert_allclose(lengths(out), lengths(motion), atol=2e-3)


def test_a_span_keeps_every_other_frame(real):
    motion = real[:120]
    cons = [Constraint(50, "pelvis", (1.0, 0.9, 1.0)), Constraint(55, "head", (0.5, 1.5, 1.2))]
    out = direct_joints(motion, Targets.from_constraints(cons), span=(40, 72))
    assert np.array_equal(out[:40], motion[:40]) and np.array_equal(out[72:], motion[72:])
    assert errors(out, Targets.from_constraints(cons)).max() < 1e-3
    assert math.isfinite(float(np.abs(np.diff(out[38:75], axis=0)).max()))


def test_a_target_out_of_reach_moves_the_body_not_the_bones(real):
    motion = real[:120] - real[0, 0] * [1, 0, 1]
    goal = motion[60, 0] + np.array([1.5, 0.3, 0.4])  # 1.6 m from the hips: no arm reaches that
    out = direct_joints(motion, Targets.from_constraints([Constraint(60, "left_wrist", tuple(goal))]))
    assert np.linalg.norm(out[60, 20] - goal) < 1e-3
    arm = lambda j: np.linalg.norm(j[60, [18, 20]] - j[60, [16, 18]], axis=-1)  # noqa: E731
    np.testing.assert_allclose(arm(out), arm(motion), atol=2e-3)
    assert np.linalg.norm((out[60, 0] - motion[60, 0])[[0, 2]]) > 1.0  # the body stepped towards it


def test_facings_turn_the_body_and_conflicting_ones_are_refused(real):
    from model_core.control import Facing
    from model_core.control.targets import heading_angles

    motion = real[:120] - real[0, 0] * [1, 0, 1]
    cons = [Facing(f, 1.0 + 0.01 * f) for f in range(30, 90, 4)]
    out = direct_joints(motion, Targets.from_constraints(cons))
    got = heading_angles(out, T2M.face_joint_indx)
    for c in cons:
        assert abs(np.angle(np.exp(1j * (got[c.frame] - c.angle)))) < 1e-6
    from model_core.control.constraints import merge_constraints
    with pytest.raises(ModelError, match="two different facings at frame 3"):
        merge_constraints([Facing(3, 0.5), Facing(3, 0.6)])
    with pytest.raises(ModelError, match="finite"):
        Facing(3, float("nan"))


def test_facings_read_from_json_and_back():
    from model_core.control import Facing
    from model_core.control.constraints import to_json

    items = [{"frame": 4, "facing": 1.5}, {"frame": 4, "joint": "head", "position": [0, 1.6, 0.2]}]
    parsed = parse_constraints(items)
    assert Facing(4, 1.5) in parsed and parse_constraints(to_json(parsed)) == parsed
    for bad, match in (({"frame": 4, "facing": "north"}, "facing must be a number"),
                       ({"frame": 4, "facing": 1.0, "joint": "head"}, "exactly the keys frame and facing"),
                       ({"frame": -2, "facing": 1.0}, "frame must be a whole number")):
        with pytest.raises(ModelError, match=match) as err:
            parse_constraints([bad])
        assert "constraint 0" in str(err.value)


def test_a_constraints_file_is_read_or_named(tmp_path):
    """One reader for the command line and the add-on: every failure one ModelError naming the file."""
    from model_core.control import Facing, read_constraints

    path = tmp_path / "c.json"
    path.write_bytes(b'{"constraints": [{"frame": 4, "facing": 1.5}]}')
    assert read_constraints(path) == [Facing(4, 1.5)]
    for content, match in ((b"\xff\xfe{}", "not UTF-8 text"), (b"{", "not valid JSON"),
                           (b"[" * 100_000, "not valid JSON"), (b'{"constraints": 3}', "must be a list")):
        path.write_bytes(content)
        with pytest.raises(ModelError, match=match) as err:
            read_constraints(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ModelError, match="cannot read the constraints file"):
        read_constraints(tmp_path)

"""Bone maps from the skeleton's shape, on rigs made in the test (pure, no Blender).

Every rig of `tests.rig_factory` knows its own true map: whatever the naming (Latin words, MMD's
Japanese, meaningless `Bone.001`), twist bones (in series, on side branches, none), helper and
IK bones, floor roots, split pelvis, rest pose, facing, yaw and scale, detection must find it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momask_blender.rig import bone_rows
from momask_blender.rig.bone_map import UNSURE, BoneInfo, detect, detect_bone_map
from momask_blender.rig.names import classify, is_helper, side_and_base
from tests.rig_factory import Spec, build, one_armed, quadruped

specs = st.builds(
    Spec,
    naming=st.sampled_from(["latin", "japanese", "meaningless"]),
    twist=st.sampled_from(["none", "series", "side"]),
    helpers=st.booleans(), floor_root=st.booleans(), split_pelvis=st.booleans(),
    pose=st.sampled_from(["T", "A", "I"]), facing=st.sampled_from(["-Y", "+Y"]),
    yaw=st.sampled_from([0.0, 30.0, 90.0, -135.0, 180.0]), scale=st.sampled_from([1.0, 100.0, 0.1]),
    spine_bones=st.integers(1, 4), neck_bones=st.integers(0, 2), collar=st.booleans(), fingers=st.booleans(),
    toes=st.sampled_from(["ball", "hub", "none"]), head_end=st.booleans(), extras=st.booleans(),
    seed=st.integers(0, 10_000),
)


def check_against_truth(bones, truth):
    found = detect(bones)
    got = found.bone_map
    assert not found.problem, found.problem
    wrong = {j: (got.get(j), b) for j, b in truth.items() if got.get(j) != b}
    assert not wrong, wrong
    # no limb joint the rig does not have (a toe hub has no ball bone, a rig without collars none)
    extra = {j: b for j, b in got.items() if j not in truth and not j.startswith("spine")}
    assert not extra, extra
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_detected_map_is_the_rigs_own_truth(spec):
    bones, truth = build(spec)
    found = check_against_truth(bones, truth)
    helpers = {b.name for b in bones if b.helper}
    assert not helpers & set(found.bone_map.values())  # IK goals and poles are never joints


@pytest.mark.parametrize("spec", [
    Spec(naming="meaningless", twist="series", facing="+Y"),              # `Bone`, `Bone.001`, facing +Y
    Spec(naming="latin", twist="series", seed=4),                         # MakeHuman/Daz: bend → twist in series
    Spec(naming="latin", twist="side", seed=1, helpers=True),             # UE5 / CC4: side-branch twists, IK bones
    Spec(naming="japanese", split_pelvis=True, twist="series", helpers=True, scale=100.0),  # MMD, centimetres
    Spec(naming="meaningless", pose="I", yaw=90.0, toes="none", extras=True),
])
def test_named_cases_of_the_issue(spec):
    bones, truth = build(spec)
    check_against_truth(bones, truth)


def test_split_pelvis_plays_the_lower_body_and_spine_starts_at_the_upper_body():
    bones, truth = build(Spec(naming="japanese", split_pelvis=True, helpers=True))
    found = detect(bones)
    assert found.bone_map["pelvis"] == "下半身" and found.bone_map["spine1"] == "上半身"
    assert "split pelvis" in found.found["pelvis"].how


def test_a_quadruped_is_refused_with_what_it_has():
    found = detect(quadruped())
    assert "four legs" in found.problem


def test_a_one_armed_rig_is_refused_naming_the_missing_arm():
    bones, _ = one_armed(Spec(naming="meaningless"))
    assert "one arm" in detect(bones).problem


@pytest.mark.parametrize("bones,word", [
    ([BoneInfo("Bone", None, (0, 0, 0), (0, 0, 1))], "1 bone"),
    ([BoneInfo("a", None, (0, 0, 0), (0, 0, 1)), BoneInfo("b", "a", (0, 0, 1), (0, 0, 2))], "2 bones"),
    ([BoneInfo(f"link{i}", f"link{i - 1}" if i else None, (0, 0, i * 0.1), (0, 0, i * 0.1 + 0.1)) for i in range(8)],
     "no legs"),  # a prop: a straight chain
    ([], "no bones"),
])
def test_props_and_tiny_rigs_are_refused(bones, word):
    assert word in detect(bones).problem


def test_blocky_rig_without_feet_takes_its_sides_from_the_names():
    """The minetest character: 6 bones, no feet, faces +Y; its left arm is at -x."""
    bones = [BoneInfo("Body", None, (0, 0, 6.3), (0, 0, 12.6)), BoneInfo("Head", "Body", (0, 0, 12.6), (0, 0, 16.8)),
             BoneInfo("Arm_Left", "Body", (-3.15, 0, 11.55), (-3.15, 0, 6.3)),
             BoneInfo("Arm_Right", "Body", (3.15, 0, 11.55), (3.15, 0, 6.3)),
             BoneInfo("Leg_Right", "Body", (1.05, 0, 6.3), (1.05, 0, 0)),
             BoneInfo("Leg_Left", "Body", (-1.05, 0, 6.3), (-1.05, 0, 0))]
    found = detect(bones)
    assert found.bone_map == {"pelvis": "Body", "left_hip": "Leg_Left", "right_hip": "Leg_Right", "head": "Head",
                              "left_shoulder": "Arm_Left", "right_shoulder": "Arm_Right"}
    assert "sides from names" in found.found["left_hip"].how


def test_names_that_say_the_other_side_are_overruled_by_the_shape_and_named():
    bones, truth = build(Spec(naming="latin", seed=2))
    swap = {b.name: b.name.replace("Left", "#").replace("Right", "Left").replace("#", "Right") for b in bones}
    mirrored = [BoneInfo(swap[b.name], swap.get(b.parent) if b.parent else None, b.head, b.tail) for b in bones]
    found = detect(mirrored)
    assert found.bone_map["left_hip"] == swap[truth["left_hip"]]  # the bone on the left, whatever its name
    assert any("other side" in w and swap[truth["left_hip"]] in w for w in found.warnings)


def test_without_geometry_names_and_hierarchy_still_map():
    bones, truth = build(Spec(naming="latin", seed=0))
    bare = [BoneInfo(b.name, b.parent) for b in bones]
    found = detect(bare)
    assert found.bone_map["left_knee"] == truth["left_knee"] and found.found["left_knee"].how == "names"


def test_confidence_is_high_on_clear_rigs_and_recorded_per_joint():
    bones, truth = build(Spec(naming="meaningless", twist="series", helpers=True))
    found = detect(bones)
    assert set(found.found) >= set(truth)
    assert all(0.0 <= f.confidence <= 1.0 and f.how for f in found.found.values())
    assert found.unsure() == [] and min(found.found[j].confidence for j in truth) >= UNSURE
    info = found.info()
    assert json.loads(json.dumps(info))["joints"]["pelvis"]["bone"] == truth["pelvis"]


def test_detect_bone_map_is_the_map_of_detect():
    bones, truth = build(Spec())
    assert detect_bone_map(bones) == detect(bones).bone_map


def test_editor_shows_detections_confidence_for_the_joints_a_stored_map_kept():
    bones, truth = build(Spec(naming="meaningless"))
    found = detect(bones)
    stored = dict(found.bone_map)
    stored["head"] = truth["neck"]  # the user moved one joint
    del stored["neck"]
    shown = bone_rows.effective(json.dumps(stored), bones, json.dumps(found.info()))
    assert shown.source == bone_rows.STORED
    assert shown.found["head"] == (None, "set by hand")
    assert shown.found["left_knee"][0] == pytest.approx(found.found["left_knee"].confidence, abs=1e-3)
    rows = {r.joint: r for r in bone_rows.rows(shown.bone_map, shown.found)}
    assert rows["head"].confidence is None and not rows["left_knee"].unsure
    shown = bone_rows.effective(json.dumps(stored), bones, "{broken")  # unreadable record: all by hand
    assert shown.found["left_knee"] == (None, "set by hand")


def test_mapping_colours_mark_sides_and_unsure_joints():
    colors = bone_rows.mapping_colors({"pelvis": "p", "left_hip": "l", "right_hip": "r", "head": "h"},
                                      {"pelvis": (0.9, ""), "left_hip": (0.95, ""), "right_hip": (0.9, ""),
                                       "head": (0.2, "")})
    assert colors == {"p": bone_rows.CENTRE_COLOR, "l": bone_rows.LEFT_COLOR, "r": bone_rows.RIGHT_COLOR,
                      "h": bone_rows.UNSURE_COLOR}


@pytest.mark.parametrize("name,side,kind", [("左足", "left", "hip"), ("右ひざ", "right", "knee"),
                                            ("左足首", "left", "ankle"), ("右腕", "right", "shoulder"),
                                            ("左ひじ", "left", "elbow"), ("右手首", "right", "wrist"),
                                            ("左つま先", "left", "foot"), ("左肩", "left", "collar")])
def test_japanese_names_are_hints_too(name, side, kind):
    assert classify(name) == (side, kind)


@pytest.mark.parametrize("name", ["左足ＩＫ", "右腕捩1", "左足D", "腰キャンセル左", "thigh_twist_01_l", "ik_foot_l",
                                  "MCH-thigh_parent.L", "左肩P"])
def test_helper_names(name):
    assert is_helper(name)


def test_side_from_japanese_marks():
    assert side_and_base("左ひざ")[0] == "left" and side_and_base("腰キャンセル右")[0] == "right"


def test_constraint_targets_are_never_joints_even_where_they_look_like_one():
    """A bone an IK constraint aims at sits exactly on the ankle, as a child of the shin."""
    bones, truth = build(Spec(naming="meaningless", seed=5))
    ankle = next(b for b in bones if b.name == truth["left_ankle"])
    shin = next(b for b in bones if b.name == truth["left_knee"])
    decoy = BoneInfo("decoy", shin.name, ankle.head, ankle.tail, helper=True)
    found = detect(bones + [decoy])
    assert found.bone_map["left_ankle"] == truth["left_ankle"]
    assert "decoy" not in found.bone_map.values()


def test_floor_root_is_never_the_pelvis_and_world_units_do_not_matter():
    for scale in (1.0, 100.0, 0.01):
        bones, truth = build(Spec(floor_root=True, scale=scale, yaw=45.0))
        got = detect(bones).bone_map
        assert got["pelvis"] == truth["pelvis"]
        assert np.isfinite(scale)

"""Bone-map detection on naming conventions and on unknown names (pure, no Blender)."""
from __future__ import annotations

import json

import pytest

from momask_blender.errors import MomaskError
from momask_blender.rig.bone_map import (
    CONVENTIONS,
    BoneInfo,
    check_bone_map,
    classify,
    detect_bone_map,
    load_preset,
    map_from_json,
    save_preset,
    side_and_base,
)
from momask_blender.rig.skeleton import JOINTS, PARENTS


def humanoid(names: dict[str, str], extras: tuple[tuple[str, str], ...] = ()) -> list[BoneInfo]:
    """A rig with the SMPL hierarchy whose bones carry `names` (joint → bone name)."""
    bones = []
    for j, joint in enumerate(JOINTS):
        parent = PARENTS[j]
        bones.append(BoneInfo(names[joint], names[JOINTS[parent]] if parent >= 0 else None))
    bones += [BoneInfo(n, p) for n, p in extras]
    return bones


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_every_convention_maps_all_22_joints(convention):
    names = CONVENTIONS[convention]
    bones = humanoid(names, extras=((names["left_wrist"] + "_twist", names["left_wrist"]),))
    assert detect_bone_map(bones) == {j: names[j] for j in JOINTS}


def test_mixamo_namespace_and_fingers_are_ignored():
    names = {j: "mixamorig1:" + n for j, n in CONVENTIONS["mixamo"].items()}
    parent = ["mixamorig1:LeftHand"] + [f"mixamorig1:LeftHandIndex{i}" for i in range(1, 4)]
    extras = tuple((f"mixamorig1:LeftHandIndex{i}", parent[i - 1]) for i in range(1, 5))
    extras += (("mixamorig1:HeadTop_End", "mixamorig1:Head"),)
    got = detect_bone_map(humanoid(names, extras))
    assert got == names


def test_unknown_names_by_side_markers_keywords_and_hierarchy():
    # No convention: sides in several spellings, twist bones between, an extra root and hip bones.
    b = [BoneInfo("root", None), BoneInfo("Hip", "root")]
    for side, tag in (("L", "left"), ("R", "right")):
        b += [BoneInfo(f"HipJoint{tag}", "Hip"), BoneInfo(f"Thigh_{side}", f"HipJoint{tag}"),
              BoneInfo(f"Thigh_{side}_twist", f"Thigh_{side}"), BoneInfo(f"Shin_{side}", f"Thigh_{side}_twist"),
              BoneInfo(f"Foot_{side}", f"Shin_{side}"), BoneInfo(f"Toes_{side}", f"Foot_{side}")]
    b += [BoneInfo("Waist", "Hip"), BoneInfo("Torso", "Waist"), BoneInfo("Chest", "Torso"),
          BoneInfo("NeckBase", "Chest"), BoneInfo("Head", "NeckBase"), BoneInfo("Head_end", "Head")]
    for side in ("L", "R"):
        b += [BoneInfo(f"{side}_Clavicle", "Chest"), BoneInfo(f"{side}_UpperArm", f"{side}_Clavicle"),
              BoneInfo(f"{side}_ElbowPart", f"{side}_UpperArm"), BoneInfo(f"{side}_Wrist", f"{side}_ElbowPart"),
              BoneInfo(f"{side}_Finger1", f"{side}_Wrist")]
    got = detect_bone_map(b)
    assert got["pelvis"] == "Hip"
    assert got["left_hip"] == "Thigh_L" and got["right_knee"] == "Shin_R" and got["left_ankle"] == "Foot_L"
    assert got["left_foot"] == "Toes_L"
    assert got["left_collar"] == "L_Clavicle" and got["left_shoulder"] == "L_UpperArm"
    assert got["right_elbow"] == "R_ElbowPart" and got["right_wrist"] == "R_Wrist"
    assert got["spine1"] == "Waist" and got["spine2"] == "Torso" and got["spine3"] == "Chest"
    assert got["neck"] == "NeckBase" and got["head"] == "Head"
    assert len(got) == 22


def test_blocky_rig_maps_what_it_has():
    b = [BoneInfo("Body", None), BoneInfo("Head", "Body"), BoneInfo("Arm_Left", "Body"),
         BoneInfo("Arm_Right", "Body"), BoneInfo("Leg_Left", "Body"), BoneInfo("Leg_Right", "Body")]
    assert detect_bone_map(b) == {"pelvis": "Body", "left_hip": "Leg_Left", "right_hip": "Leg_Right",
                                  "head": "Head", "left_shoulder": "Arm_Left", "right_shoulder": "Arm_Right"}


@pytest.mark.parametrize("name,side", [("thigh.L", "left"), ("upperarm_r", "right"), ("LeftHand", "left"),
                                       ("J_Bip_R_Foot", "right"), ("L_Knee", "left"), ("Bip01 R Calf", "right"),
                                       ("RHipJoint", "right"), ("Spine1", None), ("Root", None),
                                       ("rightUpperArm", "right"), ("hand-L", "left")])
def test_side_markers(name, side):
    assert side_and_base(name)[0] == side


def test_classify_keywords():
    assert classify("mixamorig:LeftForeArm") == ("left", "elbow")
    assert classify("calf_r") == ("right", "knee")
    assert classify("LeftHandIndex1")[1] is None
    assert classify("thigh_twist_01_l")[1] is None


def test_presets_round_trip_and_validation(tmp_path):
    names = CONVENTIONS["unreal"]
    bones = [names[j] for j in JOINTS]
    path = tmp_path / "rig.json"
    save_preset(path, names, "mannequin")
    assert load_preset(path, bones) == {j: names[j] for j in JOINTS}
    assert json.loads(path.read_text())["format"] == "momask-bone-map"
    with pytest.raises(MomaskError, match="does not have"):
        load_preset(path, bones[:-1])
    with pytest.raises(MomaskError, match="unknown joint"):
        check_bone_map({"hips": "pelvis"}, bones)
    with pytest.raises(MomaskError, match="both"):
        check_bone_map({"pelvis": "pelvis", "spine1": "pelvis"}, bones)
    with pytest.raises(MomaskError, match="not valid JSON"):
        map_from_json("{nope")
    with pytest.raises(MomaskError, match="cannot read"):
        load_preset(tmp_path / "missing.json", bones)
    theirs = tmp_path / "theirs.json"
    theirs.write_text("the user's file")
    (tmp_path / "link.json").symlink_to(theirs)
    with pytest.raises(MomaskError, match="bone map preset .*link.json is a symbolic link"):
        save_preset(tmp_path / "link.json", names, "mannequin")  # written through inputs.paths: never followed
    assert theirs.read_text() == "the user's file"
    (tmp_path / "latin.json").write_bytes('{"pelvis": "H\xfcfte"}'.encode("latin-1"))  # not UTF-8: named
    with pytest.raises(MomaskError, match="bone map preset .*latin.json is not UTF-8 text"):
        load_preset(tmp_path / "latin.json", bones)

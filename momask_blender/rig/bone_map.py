"""Which bone of a rig plays each of the 22 HumanML3D joints: detection, checks and presets (pure).

Detection reads the skeleton itself (`body`: legs; `torso`: pelvis, spine, head, arms and the
facing; `limbs`: the joints along each chain) and uses names as hints (`names`): they confirm a
choice, break near ties and raise a warning when they say the other side. Every joint is
recorded with how it was found and how sure detection is (`Found`); a rig that is not a biped
with a head and two arms, or one arm short, gets a `problem` naming what is missing instead of a
guess. A rig given without rest geometry (names and parents only) is mapped from its names.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MomaskError, model_checks
from .body import Skeleton, pick_legs
from .names import CONVENTIONS, central_kind, classify, convention_map, name_map, side_and_base
from .rest import BoneInfo
from .skeleton import JOINTS, REQUIRED
from .torso import Frame, Torso, facing, find_torso

__all__ = ["CONVENTIONS", "PRESET_FORMAT", "UNSURE", "BoneInfo", "Detection", "Found", "check_bone_map",
           "classify", "clean_map", "detect", "detect_bone_map", "load_preset", "map_from_json", "map_to_json",
           "missing_required", "save_preset", "side_and_base"]

PRESET_FORMAT = "momask-bone-map"
UNSURE = 0.6            # below this confidence the editor and the viewport mark a joint as unsure
_SPINE = ("spine1", "spine2", "spine3", "neck", "head")


@dataclass(frozen=True)
class Found:
    bone: str
    confidence: float   # 0..1
    how: str            # e.g. "shape", "shape + names", "names"


@dataclass
class Detection:
    found: dict[str, Found] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problem: str = ""   # not a humanoid (what is missing): the bake refuses a detected map

    @property
    def bone_map(self) -> dict[str, str]:
        return {j: self.found[j].bone for j in JOINTS if j in self.found}

    def unsure(self) -> list[str]:
        return [j for j in JOINTS if j in self.found and self.found[j].confidence < UNSURE]

    def info(self) -> dict:
        """What `momask_bone_map_info` stores beside the map: per joint bone, confidence, how."""
        return {"joints": {j: {"bone": f.bone, "confidence": round(f.confidence, 3), "how": f.how}
                           for j, f in self.found.items()}, "warnings": list(self.warnings), "problem": self.problem}


def detect_bone_map(bones: Sequence[BoneInfo]) -> dict[str, str]:
    """Joint name → bone name for as many of the 22 joints as the rig has (possibly fewer)."""
    return detect(bones).bone_map


def detect(bones: Sequence[BoneInfo]) -> Detection:
    """The map, per joint how it was found and how sure, warnings, and a problem for non-humanoids."""
    if not bones:
        return Detection(problem="the armature has no bones")
    if any(b.head is None for b in bones):
        return Detection({j: Found(b, 0.5, "names") for j, b in name_map(bones).items()})
    if len(bones) < 3:
        return Detection(problem=f"{len(bones)} bone{'s' if len(bones) > 1 else ''}: a humanoid needs a pelvis "
                                 "and two legs at least")
    sk = Skeleton(bones)
    legs, problems = pick_legs(sk)
    if legs is None:
        return Detection(problem=problems[0])
    frame = Frame(sk, legs)
    torso = find_torso(sk, legs, frame)
    problems += torso.problems
    sign, face_conf, face_how = facing(sk, legs, torso, frame)
    det = Detection()
    left_at_plus_u = sign < 0  # left = up × forward = -sign · u
    _add_torso(det, sk, torso)
    parts = [(leg.joints, leg.fit.confidence, _mean_lateral(sk, frame, leg.chain)) for leg in legs]
    parts += [(arm.joints, arm.fit.confidence, arm.side) for arm in torso.arms]
    mismatched = []
    for joints, conf, lat in parts:
        side = "left" if (lat > 0) == left_at_plus_u else "right"
        for kind, bone in joints.items():
            name_side, name_kind = classify(sk.names[bone])
            if name_side is not None and name_side != side:
                mismatched.append(f"{sk.names[bone]} ({side}_{kind})")
            det.found[f"{side}_{kind}"] = _found(sk.names[bone], min(conf.get(kind, 0.6), face_conf), face_how,
                                                 name_side == side and name_kind == kind)
    _warn(det, mismatched, face_how, problems)
    det.found = {j: det.found[j] for j in JOINTS if j in det.found}
    return det


def _mean_lateral(sk: Skeleton, frame: Frame, chain: list[int]) -> float:
    return float(np.mean(frame.lateral(sk.heads[chain])))


def _found(bone: str, confidence: float, face_how: str, names_agree: bool) -> Found:
    how = "shape" if face_how in ("shape", "default") else f"shape, sides from {face_how}"
    if names_agree:
        return Found(bone, max(confidence, 0.9), how + " + names")
    return Found(bone, confidence, how)


def _add_torso(det: Detection, sk: Skeleton, torso: Torso) -> None:
    """Pelvis, spine, neck and head; a known convention's spine names win when they lie, in order,
    on the spine the shape found (which spine bone plays spine2 is a matter of taste)."""
    pelvis = sk.names[torso.pelvis]
    agree = central_kind(pelvis) == "pelvis"
    how = "shape (split pelvis: legs' carrier)" if torso.split else "shape"
    det.found["pelvis"] = Found(pelvis, 0.95 if agree else (0.75 if torso.split else 0.85), how + (" + names" if agree
                                                                                                 else ""))
    spine = {}
    if torso.spine:
        spine["spine3"] = torso.spine[-1]
        if len(torso.spine) >= 2:
            spine["spine1"] = torso.spine[0]
        if len(torso.spine) >= 3:
            spine["spine2"] = torso.spine[len(torso.spine) // 2]
    if torso.neck is not None:
        spine["neck"] = torso.neck
    if torso.head is not None:
        spine["head"] = torso.head
    named = _convention_spine(sk, torso)
    if named is not None and len(named) < len(spine):
        named = None  # the convention knows fewer spine bones than the rig has: the shape decides
    for joint in _SPINE:
        if named is not None:
            if joint in named:
                det.found[joint] = Found(sk.names[named[joint]], 0.9, "names, on the spine's shape")
        elif joint in spine:
            b = spine[joint]
            agree = central_kind(sk.names[b]) == ("spine" if joint.startswith("spine") else joint)
            base = 0.85 if joint in ("neck", "head") else 0.7
            det.found[joint] = Found(sk.names[b], 0.9 if agree else base,
                                     ("shape" if joint in ("neck", "head") else "order along the spine")
                                     + (" + names" if agree else ""))


def _convention_spine(sk: Skeleton, torso: Torso) -> dict[str, int] | None:
    """The spine joints a known naming convention gives, if they all sit on the found spine in order."""
    conv = convention_map(sk.names)
    if len(conv) < 8:
        return None
    top = torso.head if torso.head is not None else (torso.spine[-1] if torso.spine else None)
    if top is None:
        return None
    line = sk.path(torso.pelvis, top) or ([torso.pelvis] + torso.spine + [top])
    pos = {b: i for i, b in enumerate(line)}
    named = {j: sk.index[conv[j]] for j in _SPINE if j in conv}
    order = [pos.get(named[j], -1) for j in _SPINE if j in named]
    if not named or min(order) <= 0 or order != sorted(order):
        return None
    return named


def _warn(det: Detection, mismatched: list[str], face_how: str, problems: list[str]) -> None:
    if mismatched and face_how == "shape":
        det.warnings.append("names say the other side for " + ", ".join(mismatched[:6])
                            + (" ..." if len(mismatched) > 6 else "") + "; the map follows the skeleton's shape")
    if face_how == "default":
        det.warnings.append("could not tell the front from the back (no feet, knees, face or side names): "
                            "assumed the rig faces -Y, Blender's front")
    unsure = det.unsure()
    if unsure:
        det.warnings.append("unsure: " + ", ".join(f"{j} ({det.found[j].bone})" for j in unsure))
    if problems:
        det.problem = "; ".join(problems)


def missing_required(bone_map: dict[str, str]) -> list[str]:
    return [j for j in REQUIRED if not bone_map.get(j)]


UNKNOWN_JOINT, ABSENT_BONE, BONE_TWICE = "unknown joint", "absent bone", "bone twice"


def clean_map(bone_map: dict, bone_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """The usable part of a map (known joints, bones that exist, each bone once, in joint order) and
    what was dropped, one line each. Never raises: the editor shows a map whose bones were renamed
    and lets the user repair it; `check_bone_map` refuses the same problems."""
    clean, dropped = _sort_out(bone_map, bone_names)
    return clean, [_LINES[kind].format(joint=j, bone=b, other=o) for kind, j, b, o in dropped]


_LINES = {UNKNOWN_JOINT: "unknown joint '{joint}'", ABSENT_BONE: "{joint}: no bone '{bone}'",
          BONE_TWICE: "{joint}: bone '{bone}' is already {other}"}


def _sort_out(bone_map: dict, bone_names: Iterable[str]) -> tuple[dict[str, str], list[tuple[str, str, str, str]]]:
    """(usable map, [(problem, joint, bone, the joint that has the bone already)]) in the map's order."""
    names = set(bone_names)
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    dropped = []
    for joint, bone in bone_map.items() if isinstance(bone_map, dict) else ():
        if joint not in JOINTS:
            dropped.append((UNKNOWN_JOINT, joint, bone, ""))
        elif not isinstance(bone, str) or not bone:
            continue
        elif bone not in names:
            dropped.append((ABSENT_BONE, joint, bone, ""))
        elif bone in used:
            dropped.append((BONE_TWICE, joint, bone, used[bone]))
        else:
            clean[joint] = bone
            used[bone] = joint
    return {j: clean[j] for j in JOINTS if j in clean}, dropped


def check_bone_map(bone_map: dict, bone_names: Iterable[str]) -> dict[str, str]:
    """A cleaned map: known joint names, bones that exist, each bone once. Raises on bad input."""
    if not isinstance(bone_map, dict):
        raise MomaskError("a bone map must be a JSON object of joint name → bone name")
    clean, dropped = _sort_out(bone_map, bone_names)
    unknown = [j for kind, j, _, _ in dropped if kind == UNKNOWN_JOINT]
    if unknown:
        raise MomaskError(f"bone map has unknown joint names {unknown}; joints are: {', '.join(JOINTS)}")
    absent = sorted(b for kind, _, b, _ in dropped if kind == ABSENT_BONE)
    if absent:
        raise MomaskError(f"bone map names bones this armature does not have: {absent}")
    if dropped:  # only bones used twice are left
        _, joint, bone, other = dropped[0]
        raise MomaskError(f"bone '{bone}' is mapped to both {other} and {joint}")
    return clean


def map_to_json(bone_map: dict[str, str]) -> str:
    return json.dumps({j: bone_map[j] for j in JOINTS if j in bone_map})


def map_from_json(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as err:
        raise MomaskError(f"the bone map is not valid JSON: {err}") from None
    if isinstance(data, dict) and data.get("format") == PRESET_FORMAT:
        data = data.get("map")
    if not isinstance(data, dict):
        raise MomaskError("a bone map must be a JSON object of joint name → bone name")
    return data


def save_preset(path: str | Path, bone_map: dict[str, str], rig_name: str = "") -> Path:
    """Write a preset file whole or not at all (model_core.inputs.paths); returns its absolute path."""
    from model_core.inputs.paths import write_text

    payload = {"format": PRESET_FORMAT, "version": 1, "rig": rig_name,
               "map": {j: bone_map[j] for j in JOINTS if j in bone_map}}
    with model_checks():
        return write_text(path, json.dumps(payload, indent=1) + "\n", "bone map preset")


def load_preset(path: str | Path, bone_names: Iterable[str]) -> dict[str, str]:
    from model_core.inputs.text import read_text

    with model_checks():
        text = read_text(path, "bone map preset")
    return check_bone_map(map_from_json(text), bone_names)

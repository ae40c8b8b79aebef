"""Editing a bone map row by row (the sidebar's bone-map editor), without Blender.

The map the bake uses is the armature's stored map when it has one (the user's edits), otherwise
the detected one (`scene.bone_maps.resolve_bone_map`). The editor shows that same map, 22 rows in HumanML3D
order with how sure detection is of each, and each edit stores the whole map on the armature.
Presets are `bone_map.save_preset` / `load_preset` files; this module adds their file names.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import MomaskError
from .bone_map import UNSURE, BoneInfo, Detection, check_bone_map, clean_map, detect, map_from_json
from .skeleton import JOINTS, REQUIRED

STORED, DETECTED = "stored", "detected"


@dataclass(frozen=True)
class Row:
    joint: str
    bone: str       # "" when no bone plays this joint
    required: bool  # the bake refuses a map without it
    confidence: float | None = None  # how sure detection is (None: the user's choice, or unknown)
    how: str = ""                    # how the bone was found ("shape + names", "set by hand", ...)

    @property
    def missing(self) -> bool:
        return not self.bone

    @property
    def unsure(self) -> bool:
        return self.confidence is not None and self.confidence < UNSURE


@dataclass(frozen=True)
class Shown:
    """What the editor shows: the map, where it comes from, per joint how sure, and what is wrong."""

    bone_map: dict[str, str]
    source: str                      # STORED or DETECTED
    problems: list[str]              # the stored map's broken entries
    found: dict[str, tuple[float | None, str]] = field(default_factory=dict)  # joint → (confidence, how)
    warnings: list[str] = field(default_factory=list)
    problem: str = ""                # detection found no humanoid


def detected(bones: Sequence[BoneInfo]) -> Detection:
    """`detect`, remembered per rig (the panel asks on every redraw)."""
    return _detect(tuple(bones))


@lru_cache(maxsize=16)
def _detect(bones: tuple[BoneInfo, ...]) -> Detection:
    return detect(list(bones))


def effective(stored: str | dict | None, bones: Sequence[BoneInfo], info: str | dict | None = None) -> Shown:
    """The map the editor shows and the bake would use: the stored one (the user's) when there is
    one, with the confidence detection recorded for the joints it still agrees with; else the
    detected one."""
    det = detected(bones)
    auto = {j: (f.confidence, f.how) for j, f in det.found.items()}
    if not stored:
        return Shown(det.bone_map, DETECTED, [], auto, list(det.warnings), det.problem)
    try:
        data = map_from_json(stored) if isinstance(stored, str) else dict(stored)
    except MomaskError as err:
        return Shown(det.bone_map, DETECTED, [str(err)], auto, list(det.warnings), det.problem)
    clean, problems = clean_map(data, [b.name for b in bones])
    recorded = _recorded(info)
    found = {}
    for joint, bone in clean.items():
        was = recorded.get(joint)
        found[joint] = (was["confidence"], was["how"]) if was and was.get("bone") == bone else (None, "set by hand")
    return Shown(clean, STORED, problems, found)


def _recorded(info: str | dict | None) -> dict:
    """The per-joint record of `momask_bone_map_info` (anything unreadable counts as none)."""
    try:
        data = json.loads(info) if isinstance(info, str) else (dict(info) if info else {})
        joints = data.get("joints", {})
        return {j: v for j, v in joints.items() if isinstance(v, dict) and isinstance(v.get("confidence"), float | int)
                and isinstance(v.get("how"), str)}
    except (TypeError, ValueError, AttributeError):
        return {}


def rows(bone_map: dict[str, str], found: dict[str, tuple[float | None, str]] | None = None) -> list[Row]:
    """The editor's 22 rows, in HumanML3D joint order."""
    found = found or {}
    return [Row(j, bone_map.get(j, ""), j in REQUIRED, *found.get(j, (None, ""))) for j in JOINTS]


# Bone colours of the viewport's "Show Mapping" (Blender's theme palettes).
LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR, UNSURE_COLOR = "THEME04", "THEME03", "THEME06", "THEME01"


def mapping_colors(bone_map: dict[str, str], found: dict[str, tuple[float | None, str]]) -> dict[str, str]:
    """Bone → palette: left blue, right green, centre purple, and red where detection is unsure."""
    out = {}
    for joint, bone in bone_map.items():
        confidence = found.get(joint, (None, ""))[0]
        if confidence is not None and confidence < UNSURE:
            out[bone] = UNSURE_COLOR
        else:
            out[bone] = LEFT_COLOR if joint.startswith("left_") else RIGHT_COLOR if joint.startswith("right_") \
                else CENTRE_COLOR
    return out


def set_joint(bone_map: dict[str, str], joint: str, bone: str,
              bone_names: Iterable[str]) -> tuple[dict[str, str], str | None]:
    """A new map with `joint` played by `bone` ("" clears it), and the joint that gave the bone up.

    A bone plays one joint: choosing a bone that another joint had moves it (that joint is then
    unmapped and shown as missing).
    """
    if joint not in JOINTS:
        raise MomaskError(f"unknown joint '{joint}'; joints are: {', '.join(JOINTS)}")
    names = set(bone_names)
    out = {j: b for j, b in bone_map.items() if j != joint}
    moved = None
    if bone:
        if bone not in names:
            raise MomaskError(f"the armature has no bone '{bone}'")
        for other, b in list(out.items()):
            if b == bone:
                moved = other
                del out[other]
        out[joint] = bone
    return check_bone_map(out, names), moved


def summary(bone_map: dict[str, str], source: str = "") -> str:
    """e.g. '19 of 22 joints mapped (detected); missing: left_collar, right_collar, head'."""
    missing = [j for j in JOINTS if not bone_map.get(j)]
    line = f"{len(JOINTS) - len(missing)} of {len(JOINTS)} joints mapped"
    if source:
        line += f" ({source})"
    if missing:
        line += "; missing: " + ", ".join(missing)
    return line


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def preset_name(rig_name: str) -> str:
    """A file name for a rig's preset: 'mixamorig Hips' → 'mixamorig Hips.json', no path tricks."""
    stem = _UNSAFE.sub("_", rig_name).strip(" .") or "bone_map"
    return f"{stem[:64]}.json"


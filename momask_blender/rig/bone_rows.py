"""Editing a bone map row by row (the sidebar's bone-map editor), without Blender.

The map the bake uses is the armature's stored map when it has one (the user's edits), otherwise
the detected one (`job.resolve_bone_map`). The editor shows that same map, 22 rows in HumanML3D
order, and each edit stores the whole map on the armature. Presets are `bone_map.save_preset` /
`load_preset` files; this module adds their file names.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import MomaskError
from .bone_map import BoneInfo, check_bone_map, detect_bone_map, map_from_json
from .skeleton import JOINTS, REQUIRED

STORED, DETECTED = "stored", "detected"


@dataclass(frozen=True)
class Row:
    joint: str
    bone: str       # "" when no bone plays this joint
    required: bool  # the bake refuses a map without it

    @property
    def missing(self) -> bool:
        return not self.bone


@lru_cache(maxsize=16)
def _detect(bones: tuple[BoneInfo, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(detect_bone_map(list(bones)).items())


def detected(bones: Sequence[BoneInfo]) -> dict[str, str]:
    """`detect_bone_map`, remembered per rig (the panel asks on every redraw)."""
    return dict(_detect(tuple(bones)))


def clean_map(bone_map: dict, bone_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """The usable part of a map and what was dropped (unknown joints, absent bones, bones used twice).

    Unlike `check_bone_map` this never raises: the editor shows a map whose bones were renamed,
    and lets the user repair it.
    """
    names = set(bone_names)
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    problems = []
    for joint, bone in bone_map.items() if isinstance(bone_map, dict) else ():
        if joint not in JOINTS:
            problems.append(f"unknown joint '{joint}'")
        elif not isinstance(bone, str) or not bone:
            continue
        elif bone not in names:
            problems.append(f"{joint}: no bone '{bone}'")
        elif bone in used:
            problems.append(f"{joint}: bone '{bone}' is already {used[bone]}")
        else:
            clean[joint] = bone
            used[bone] = joint
    return {j: clean[j] for j in JOINTS if j in clean}, problems


def effective_map(stored: str | dict | None, bones: Sequence[BoneInfo]) -> tuple[dict[str, str], str, list[str]]:
    """(map, STORED or DETECTED, problems): what the editor shows and the bake would use."""
    if stored:
        try:
            data = map_from_json(stored) if isinstance(stored, str) else dict(stored)
        except MomaskError as err:
            return detected(bones), DETECTED, [str(err)]
        clean, problems = clean_map(data, [b.name for b in bones])
        return clean, STORED, problems
    return detected(bones), DETECTED, []


def rows(bone_map: dict[str, str]) -> list[Row]:
    """The editor's 22 rows, in HumanML3D joint order."""
    return [Row(j, bone_map.get(j, ""), j in REQUIRED) for j in JOINTS]


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


def list_presets(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.is_file())

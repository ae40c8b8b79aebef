"""What bone names say: side markers, body-part words and the naming conventions we know (pure).

Names are hints. Detection reads the skeleton's shape first (`body`, `limbs`) and uses these to
confirm it, to break near ties and to warn when a name says the other side; only a rig that
arrives without rest geometry is mapped from its names and hierarchy alone (`name_map`): known
conventions by exact names, then side markers and keywords, then the chains above hands and feet.
Latin and Japanese (MMD) names are understood; nothing here knows any particular file.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .rest import BoneInfo, BoneTree
from .skeleton import JOINTS


def _sided(left: dict[str, str], right_of) -> dict[str, str]:
    out = {}
    for joint, name in left.items():
        out[joint] = name
        if joint.startswith("left_"):
            out["right_" + joint[5:]] = right_of(name)
    return out


def _limbs(hip, knee, ankle, foot, collar, shoulder, elbow, wrist) -> dict[str, str]:
    return {"left_hip": hip, "left_knee": knee, "left_ankle": ankle, "left_foot": foot,
            "left_collar": collar, "left_shoulder": shoulder, "left_elbow": elbow, "left_wrist": wrist}


# Exact names of the conventions we know; spine joints are placed by the hierarchy afterwards.
CONVENTIONS: dict[str, dict[str, str]] = {
    "mixamo": _sided({"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2",
                      "neck": "Neck", "head": "Head",
                      **_limbs("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftShoulder",
                               "LeftArm", "LeftForeArm", "LeftHand")},
                     lambda n: n.replace("Left", "Right")),
    "bvh_cmu": _sided({"pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1",
                       "neck": "Neck", "head": "Head",
                       **_limbs("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToe", "LeftShoulder",
                                "LeftArm", "LeftForeArm", "LeftHand")},
                      lambda n: n.replace("Left", "Right")),
    "unreal": _sided({"pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_02", "spine3": "spine_03",
                      "neck": "neck_01", "head": "head",
                      **_limbs("thigh_l", "calf_l", "foot_l", "ball_l", "clavicle_l", "upperarm_l",
                               "lowerarm_l", "hand_l")},
                     lambda n: n[:-2] + "_r"),
    "vroid": _sided({"pelvis": "J_Bip_C_Hips", "spine1": "J_Bip_C_Spine", "spine2": "J_Bip_C_Chest",
                     "spine3": "J_Bip_C_UpperChest", "neck": "J_Bip_C_Neck", "head": "J_Bip_C_Head",
                     **_limbs("J_Bip_L_UpperLeg", "J_Bip_L_LowerLeg", "J_Bip_L_Foot", "J_Bip_L_ToeBase",
                              "J_Bip_L_Shoulder", "J_Bip_L_UpperArm", "J_Bip_L_LowerArm", "J_Bip_L_Hand")},
                    lambda n: n.replace("_L_", "_R_")),
    "vrm_humanoid": _sided({"pelvis": "hips", "spine1": "spine", "spine2": "chest", "spine3": "upperChest",
                            "neck": "neck", "head": "head",
                            **_limbs("leftUpperLeg", "leftLowerLeg", "leftFoot", "leftToes", "leftShoulder",
                                     "leftUpperArm", "leftLowerArm", "leftHand")},
                           lambda n: n.replace("left", "right")),
    "blender_metarig": _sided({"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002",
                               "spine3": "spine.003", "neck": "spine.004", "head": "spine.006",
                               **_limbs("thigh.L", "shin.L", "foot.L", "toe.L", "shoulder.L", "upper_arm.L",
                                        "forearm.L", "hand.L")},
                              lambda n: n[:-2] + ".R"),
    "rigify_deform": _sided({"pelvis": "DEF-spine", "spine1": "DEF-spine.001", "spine2": "DEF-spine.002",
                             "spine3": "DEF-spine.003", "neck": "DEF-spine.004", "head": "DEF-spine.006",
                             **_limbs("DEF-thigh.L", "DEF-shin.L", "DEF-foot.L", "DEF-toe.L", "DEF-shoulder.L",
                                      "DEF-upper_arm.L", "DEF-forearm.L", "DEF-hand.L")},
                            lambda n: n[:-2] + ".R"),
    "rigify_controls": _sided({"pelvis": "torso", "spine1": "spine_fk.001", "spine2": "spine_fk.002",
                               "spine3": "chest", "neck": "neck", "head": "head",
                               **_limbs("thigh_fk.L", "shin_fk.L", "foot_fk.L", "toe_fk.L", "shoulder.L",
                                        "upper_arm_fk.L", "forearm_fk.L", "hand_fk.L")},
                              lambda n: n[:-2] + ".R"),
    "smpl": _sided({"pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3",
                    "neck": "Neck", "head": "Head",
                    **_limbs("L_Hip", "L_Knee", "L_Ankle", "L_Foot", "L_Collar", "L_Shoulder", "L_Elbow",
                             "L_Wrist")},
                   lambda n: "R_" + n[2:]),
    "smplx": {j: j for j in JOINTS},
    "biped": _sided({"pelvis": "Bip01 Pelvis", "spine1": "Bip01 Spine", "spine2": "Bip01 Spine1",
                     "spine3": "Bip01 Spine2", "neck": "Bip01 Neck", "head": "Bip01 Head",
                     **_limbs("Bip01 L Thigh", "Bip01 L Calf", "Bip01 L Foot", "Bip01 L Toe0",
                              "Bip01 L Clavicle", "Bip01 L UpperArm", "Bip01 L Forearm", "Bip01 L Hand")},
                    lambda n: n.replace(" L ", " R ")),
}

_SPINE_JOINTS = ("spine1", "spine2", "spine3", "neck")


def normalized(name: str) -> str:
    """A name without namespaces ('mixamorig:', 'Armature|', SMPL's 'm_avg_') and case."""
    name = re.split(r"[:|]", unicodedata.normalize("NFKC", name))[-1]
    name = re.sub(r"^(m_avg_|f_avg_|smplx?_)", "", name, flags=re.I)
    return name.lower()


# ----------------------------------------------------------------------------- name heuristics

_SIDE_TOKENS = {"l": "left", "left": "left", "r": "right", "right": "right"}
_EXCLUDE = re.compile(
    r"finger|thumb|index|middle|ring|pinky|little|twist|roll|ik|pole|target|helper|mch|end|tip|nub|"
    r"heel|bend|corrective|breast|bust|sleeve|hair|skirt|eye|jaw|tongue|teeth|cheek|brow|lid|lip|"
    r"nose|(?<!for)ear|weapon|prop|palm|meta|carpal|upvector|ctrl|bone\d|socket|attach|vb|proxy|dummy|null",
)
# MMD's standard names (side marks removed): joint classes, and the words of helper bones.
_JAPANESE = {"足": "hip", "ひざ": "knee", "膝": "knee", "足首": "ankle", "つま先": "foot", "肩": "collar",
             "腕": "shoulder", "ひじ": "elbow", "肘": "elbow", "手首": "wrist"}
_JAPANESE_HELPER = re.compile(r"ik|捩|キャンセル|親指|人指|中指|薬指|小指|目|先ex|^肩[pc]$"
                              r"|(?<=[^\x00-\x7f])d$|ダミー|操作|調整")
_KEYWORDS = (  # (joint class, regex on the side-less base name), most specific first
    ("elbow", r"forearm|lowerarm|elbow|lower_arm"),
    ("shoulder", r"upperarm|upper_arm|^arm$|arm$"),
    ("wrist", r"hand|wrist"),
    ("collar", r"clavicle|collar|shoulder"),
    ("foot", r"toe|ball"),
    ("ankle", r"foot|ankle"),
    ("hip", r"thigh|upleg|upperleg|upper_leg"),
    ("knee", r"calf|shin|knee|lowerleg|lower_leg|^leg$|leg$"),
    ("hip", r"hip"),
)


def side_and_base(name: str) -> tuple[str | None, str]:
    """('left'|'right'|None, the lower-case name with the side marker and separators removed)."""
    raw = re.split(r"[:|]", unicodedata.normalize("NFKC", name))[-1]
    side = None
    low = raw.lower()
    for mark, word in (("左", "left"), ("右", "right")):  # MMD: 左足, 右ひじ, 腰キャンセル左
        if mark in low:
            side, low = word, low.replace(mark, " ")
            break
    for word in ("left", "right") if side is None else ():
        if word in low:
            side, low = word, low.replace(word, " ")
            break
    tokens = [t for t in re.split(r"[\s._\-]+", low) if t]
    if side is None:
        for t in tokens:
            if t in _SIDE_TOKENS:
                side = _SIDE_TOKENS[t]
                break
        tokens = [t for t in tokens if t not in _SIDE_TOKENS]
        if side is None:
            m = re.match(r"^([LR])(?=[A-Z])", raw)  # CMU style: LHipJoint, RThumb
            if m:
                side = "left" if m.group(1) == "L" else "right"
                tokens = [re.sub(r"^[lr]", "", tokens[0])] + tokens[1:] if tokens else tokens
    tokens = [t for t in tokens if not re.fullmatch(r"def|org|j|bip\d*|c|mixamorig\d*", t)]
    return side, "".join(tokens)


def classify(name: str) -> tuple[str | None, str | None]:
    """(side, joint class such as 'knee') from a bone name's words, or (side, None)."""
    side, base = side_and_base(name)
    if not base or is_helper_base(base) or re.search(r"\d$", base) and not base.startswith("spine"):
        return side, None
    if base in _JAPANESE:
        return side, _JAPANESE[base]
    for kind, pattern in _KEYWORDS:
        if re.search(pattern, base):
            return side, kind
    return side, None


# ----------------------------------------------------------------------------- hierarchy helpers


def _bone(tree: BoneTree, name: str | None) -> int | None:
    return tree.index.get(name) if name is not None else None


def _ancestor_names(tree: BoneTree, name: str) -> list[str]:
    b = _bone(tree, name)
    return [] if b is None else [tree.names[a] for a in tree.ancestors(b)]


def _is_above(tree: BoneTree, a: str, b: str) -> bool:
    """`a` is an ancestor of `b`."""
    return a in _ancestor_names(tree, b)


def _meet(tree: BoneTree, a: str, b: str) -> str | None:
    """The lowest bone at or above both."""
    ia, ib = _bone(tree, a), _bone(tree, b)
    if ia is None or ib is None:
        return a if a == b else None
    meet = tree.lca([ia, ib])
    return None if meet is None else tree.names[meet]


def _between(tree: BoneTree, top: str, bottom: str) -> list[str]:
    """Bones strictly between `top` and `bottom` (top side first)."""
    it, ib = _bone(tree, top), _bone(tree, bottom)
    return [] if it is None or ib is None else [tree.names[b] for b in tree.path(it, ib)[1:-1]]


def _depth(tree: BoneTree, name: str) -> int:
    return len(_ancestor_names(tree, name))


def _children(tree: BoneTree, name: str) -> list[str]:
    b = _bone(tree, name)
    return [] if b is None else [tree.names[c] for c in tree.children[b]]


def _usable_parent(tree: BoneTree, name: str) -> str | None:
    """The nearest ancestor that is not a twist/helper bone."""
    for a in _ancestor_names(tree, name):
        if not is_helper_base(side_and_base(a)[1]) and not re.search(r"\.\d{3}$", a):
            return a
    return None


def _keyword_bones(tree: BoneTree) -> dict[tuple[str | None, str], list[str]]:
    found: dict[tuple[str | None, str], list[str]] = {}
    for name in tree.names:
        side, kind = classify(name)
        if kind:
            found.setdefault((side, kind), []).append(name)
    for names in found.values():
        names.sort(key=lambda n: _depth(tree, n))
    return found


def _limb(tree: BoneTree, kw, side: str, out: dict[str, str]) -> None:
    """Fill one side's leg and arm joints from keywords and the chain above hand and foot."""
    def pick(kind, must_be_above=None):
        for name in kw.get((side, kind), []):
            if must_be_above is None or _is_above(tree, name, must_be_above):
                return name
        return None

    def setj(joint, name):
        if name and f"{side}_{joint}" not in out and name not in out.values():
            out[f"{side}_{joint}"] = name

    # Leg: ankle, then what is above it.
    ankle = out.get(f"{side}_ankle") or pick("ankle")
    if ankle:
        setj("ankle", ankle)
        knee = out.get(f"{side}_knee") or pick("knee", ankle) or _usable_parent(tree, ankle)
        setj("knee", knee)
        if knee:
            hip = out.get(f"{side}_hip") or pick("hip", knee) or _usable_parent(tree, knee)
            setj("hip", hip)
        toe = out.get(f"{side}_foot") or next(
            (n for n in kw.get((side, "foot"), []) if _is_above(tree, ankle, n)), None)
        if toe is None:
            kids = [c for c in _children(tree, ankle) if classify(c)[1] is not None or
                    not is_helper_base(side_and_base(c)[1])]
            toe = kids[0] if len(kids) == 1 else None
        setj("foot", toe)
    else:
        hip = out.get(f"{side}_hip") or pick("hip")
        knee = out.get(f"{side}_knee") or pick("knee")
        if knee and not hip and not any(_is_above(tree, k, knee) for k in kw.get((side, "hip"), [])):
            hip, knee = knee, None  # a single 'Leg' bone: it is the whole leg, from the hip
        setj("hip", hip)
        setj("knee", knee)

    # Arm: wrist, then what is above it.
    wrist = out.get(f"{side}_wrist") or pick("wrist")
    if wrist:
        setj("wrist", wrist)
        elbow = out.get(f"{side}_elbow") or pick("elbow", wrist) or _usable_parent(tree, wrist)
        setj("elbow", elbow)
        shoulder = out.get(f"{side}_shoulder")
        if elbow and not shoulder:
            setj("shoulder", pick("shoulder", elbow) or _usable_parent(tree, elbow))
    else:
        setj("shoulder", out.get(f"{side}_shoulder") or pick("shoulder"))
        setj("elbow", out.get(f"{side}_elbow") or pick("elbow"))
    shoulder = out.get(f"{side}_shoulder")
    if shoulder and f"{side}_collar" not in out:
        parent = _usable_parent(tree, shoulder)
        if parent and side_and_base(parent)[0] == side:
            setj("collar", parent)


def _spine(tree: BoneTree, out: dict[str, str]) -> None:
    """Pelvis where the legs meet; spine, neck and head along the chain to the head."""
    hips = [out.get("left_hip"), out.get("right_hip")]
    if all(hips):
        meet = _meet(tree, *hips)
        if meet and meet not in hips:
            table = out.get("pelvis")
            if not (table and _is_above(tree, table, hips[0]) and _is_above(tree, table, hips[1])):
                out["pelvis"] = meet
    pelvis = out.get("pelvis")
    if pelvis is None:
        return
    tops = [out.get(f"{s}_{j}") for s in ("left", "right") for j in ("collar", "shoulder")]
    left_top = out.get("left_collar") or out.get("left_shoulder")
    right_top = out.get("right_collar") or out.get("right_shoulder")
    branch = _meet(tree, left_top, right_top) if left_top and right_top else None
    if branch is not None and branch != pelvis and not _is_above(tree, pelvis, branch):
        branch = None
    head = out.get("head")
    if head is None or not _is_above(tree, pelvis, head):
        head = None
        centre = [n for n in tree.names if side_and_base(n)[0] is None and "head" in side_and_base(n)[1]
                  and not is_helper_base(side_and_base(n)[1]) and _is_above(tree, pelvis, n)]
        if branch:
            centre = [n for n in centre if _is_above(tree, branch, n)] or centre
        if centre:
            head = min(centre, key=lambda n: _depth(tree, n))
    if head:
        out["head"] = head
    for j in _SPINE_JOINTS:
        out.pop(j, None)
    if head is None and branch is None:
        return
    top = head or branch
    between = _between(tree, pelvis, top)  # spine bones strictly between the pelvis and top
    between = [b for b in between if b not in tops and b not in out.values()]
    if branch and branch != pelvis and head:
        lower = between[: between.index(branch) + 1] if branch in between else []
        upper = between[between.index(branch) + 1:] if branch in between else []
    elif head:
        lower, upper = between[:-1], between[-1:]
    else:
        lower, upper = between, []
    if upper:
        out["neck"] = upper[0]
    if lower:
        out["spine3"] = lower[-1]
        if len(lower) >= 2:
            out["spine1"] = lower[0]
        if len(lower) >= 3:
            out["spine2"] = lower[len(lower) // 2]


def convention_map(names: Sequence[str]) -> dict[str, str]:
    """Joint → bone of the known convention that names the most of these bones exactly."""
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(normalized(n), n)
    best: dict[str, str] = {}
    for table in CONVENTIONS.values():
        hits = {j: by_norm[n.lower()] for j, n in table.items() if n.lower() in by_norm}
        if len(hits) > len(best):
            best = hits
    return best


def name_map(bones: Sequence[BoneInfo]) -> dict[str, str]:
    """Joint → bone from names and the hierarchy alone (no geometry): as many joints as it finds."""
    tree = BoneTree(bones)
    # 1. The convention with the most exact names gives the first guesses.
    best = convention_map([b.name for b in bones])
    out = {j: b for j, b in best.items() if j not in _SPINE_JOINTS} if len(best) >= 4 else {}
    # 2. Keywords and the chains above hands and feet fill the rest, per side.
    kw = _keyword_bones(tree)
    for side in ("left", "right"):
        _limb(tree, kw, side, out)
    # 3. The hierarchy places the pelvis, spine, neck and head.
    _spine(tree, out)
    return {j: out[j] for j in JOINTS if j in out}


def is_helper_base(base: str) -> bool:
    """A side-less base name of a twist, IK, control, finger or face bone (never a body joint)."""
    return bool(_EXCLUDE.search(base) or _JAPANESE_HELPER.search(base))


def is_helper(name: str) -> bool:
    return is_helper_base(side_and_base(name)[1])


_CENTRAL = (("head", r"^head$|^頭$|^head\d?$"), ("neck", r"neck|^首$"), ("pelvis", r"pelvis|hips?$|下半身"),
            ("spine", r"spine|chest|torso|waist|abdomen|上半身"))


def central_kind(name: str) -> str | None:
    """'head', 'neck', 'pelvis' or 'spine' for a central bone's name, else None."""
    side, base = side_and_base(name)
    if side is not None or not base or is_helper_base(base):
        return None
    for kind, pattern in _CENTRAL:
        if re.search(pattern, base):
            return kind
    return None

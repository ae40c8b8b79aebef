"""Humanoid (and not so humanoid) skeletons made to order, each knowing its own true bone map.

A `Spec` says how the rig is built: naming (Latin words, MMD's Japanese, or meaningless
`Bone.001`), twist bones in series or on side branches, helper/IK bones, a floor root, a split
pelvis, T/A/I rest poses, facing, yaw, scale, proportions. `build(spec)` gives the bones as
detection reads them (world-space heads and tails) and the map a person would choose. The
Blender tests turn the same description into real armatures (`tests.blender_helpers`).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from momask_blender.rig.rest import BoneInfo, RigRest


@dataclass(frozen=True)
class Spec:
    naming: str = "latin"        # latin | japanese | meaningless
    twist: str = "none"          # none | series | side
    helpers: bool = False        # IK goals and poles under a floor root, a parent helper in series above the thigh
    floor_root: bool = False
    split_pelvis: bool = False   # MMD: 下半身 (legs) and 上半身 (spine) under センター/グルーブ
    pose: str = "T"              # T | A | I
    facing: str = "-Y"           # -Y (Blender's front) | +Y
    yaw: float = 0.0             # degrees, the whole rig turned about Z (a rotated armature object)
    scale: float = 1.0           # 100: a centimetre rig
    spine_bones: int = 3
    neck_bones: int = 1          # 0: no neck
    collar: bool = True
    fingers: bool = True
    toes: str = "ball"           # ball | hub (five toes) | none
    head_end: bool = True
    extras: bool = False         # distractors: tail, skirt, hair, breasts, face, heel bones, a weapon
    seed: int = 0                # proportions and name styles


@dataclass
class _Rig:
    spec: Spec
    rng: random.Random
    bones: list[dict] = field(default_factory=list)   # name, parent, head, tail (body frame, metres)
    truth: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def add(self, role: str, parent: str | None, head, tail, joint: str | None = None) -> str:
        name = _name(self, role)
        self.bones.append({"name": name, "parent": parent, "head": np.asarray(head, float),
                           "tail": np.asarray(tail, float), "role": role})
        if joint:
            self.truth[joint] = name
        return name


_LATIN = {
    "root": ["root", "Root", "Armature_root"], "pelvis": ["Hips", "pelvis", "Pelvis", "hip"],
    "spine": ["Spine{i}", "spine_0{i}", "Chest{i}", "Torso{i}"], "neck": ["Neck{i}", "neck_0{i}"],
    "head": ["Head", "head"], "head_end": ["HeadTop_End", "head_end"],
    "thigh": ["Thigh", "UpperLeg", "UpLeg", "thigh"], "shin": ["Shin", "LowerLeg", "calf", "Knee"],
    "foot": ["Foot", "foot", "Ankle"], "toe": ["Toe", "ToeBase", "ball"], "toe_end": ["Toe_end", "toe_tip"],
    "collar": ["Clavicle", "Shoulder", "collar"], "upperarm": ["UpperArm", "Arm", "upperarm"],
    "forearm": ["ForeArm", "LowerArm", "forearm"], "hand": ["Hand", "Wrist", "hand"],
    "finger": ["Finger{i}_{k}", "f_{i}.0{k}"], "toes5": ["Toe{i}_{k}"],
    "twist": ["{part}Twist{k}", "{part}_twist_0{k}", "{part}Roll{k}"], "bend": ["{part}Bend"],
    "ik": ["ik_{part}", "{part}_IK", "IK_{part}"], "pole": ["{part}_pole", "pole_{part}"],
    "helper": ["MCH-{part}_parent", "{part}_socket"], "center": ["COG"], "groove": ["COG_offset"],
    "lower": ["LowerBody"], "upper": ["UpperBody"], "extra": ["{part}{i}"],
}
_SIDES = [("{n}_L", "{n}_R"), ("{n}.L", "{n}.R"), ("Left{n}", "Right{n}"), ("L_{n}", "R_{n}"), ("{n}_l", "{n}_r")]
_JAPANESE = {
    "root": "全ての親", "center": "センター", "groove": "グルーブ", "lower": "下半身", "upper": "上半身",
    "pelvis": "腰", "spine": "上半身{i}", "neck": "首{i}", "head": "頭", "head_end": "頭先",
    "thigh": "足", "shin": "ひざ", "foot": "足首", "toe": "つま先", "toe_end": "つま先先", "collar": "肩",
    "upperarm": "腕", "forearm": "ひじ", "hand": "手首", "finger": "指{i}_{k}", "toes5": "趾{i}_{k}",
    "twist": "{part}捩{k}", "bend": "{part}", "ik": "{part}ＩＫ", "pole": "{part}ＩＫ先",
    "helper": "{part}P", "extra": "{part}{i}",
}


def _name(rig: _Rig, role: str) -> str:
    """A name for a bone of `role` ('thigh.L', 'twist:thigh:1.R', 'spine:2') in the spec's naming."""
    rig.counter += 1
    if rig.spec.naming == "meaningless":
        return "Bone" if rig.counter == 1 else f"Bone.{rig.counter - 1:03d}"
    side = role[-2:] if role[-2:] in (".L", ".R") else ""
    kind, *args = (role[:-2] if side else role).split(":")
    named_part = kind in ("twist", "bend", "ik", "pole", "helper", "extra")
    part = args[0] if named_part and args else ""
    numbers = args[1:] if named_part else args
    fields = {"i": numbers[0] if numbers else "", "k": numbers[-1] if numbers else "", "part": part}
    if kind == "extra":
        fields["i"] = str(rig.counter)  # distractors are many: a running number keeps names apart
    if rig.spec.naming == "japanese":
        text = _JAPANESE[kind].format(**{**fields, "part": _JAPANESE.get(part, part).format(i="", k="")})
        return (("左" if side == ".L" else "右") + text) if side else text
    styles = _LATIN[kind]
    text = styles[rig.spec.seed % len(styles)].format(**{**fields, "part": part.capitalize() or "Limb"})
    if side:
        text = _SIDES[rig.spec.seed % len(_SIDES)][0 if side == ".L" else 1].format(n=text)
    return text


def _jitter(rng: random.Random, v: float, amount: float = 0.08) -> float:
    return v * (1.0 + rng.uniform(-amount, amount))


def build(spec: Spec) -> tuple[list[BoneInfo], dict[str, str]]:
    """The rig's bones (world space, parents first) and its true map."""
    rig = _Rig(spec, random.Random(spec.seed))
    parent = None
    if spec.floor_root or spec.helpers:
        parent = rig.add("root", None, (0, 0, 0), (0, 0.15, 0))
    pelvis, spine_start = _hips(rig, parent)
    chest = _spine(rig, spine_start)
    for s in (".L", ".R"):
        _leg(rig, pelvis, s, parent)
        _arm(rig, chest, s)
    if spec.extras:
        _extras(rig, pelvis, chest)
    return _to_world(rig), rig.truth


def _extras(rig: _Rig, pelvis: str, chest: str) -> None:
    """Bones that are no joints: a tail, skirt and hair chains, breasts, eyes and a jaw, heel bones,
    a weapon in the hand. Their names are plain words ('extra'), so only the shape can tell."""
    z = rig.pelvis_z
    prev = pelvis
    for k in range(4):  # a tail, back and down
        head = (0, 0.1 + 0.12 * k, z - 0.1 * k)
        prev = rig.add(f"extra:tail:{k}", prev, head, (0, head[1] + 0.12, head[2] - 0.1))
    for k, x in enumerate((-0.12, 0.12)):  # skirt panels down to the knees
        prev = pelvis
        for n in range(3):
            top = z - 0.15 * n
            prev = rig.add(f"extra:skirt{k}:{n}", prev, (x * 1.2, -0.1, top), (x * 1.3, -0.1, top - 0.15))
    head = rig.truth["head"]
    hz = [b for b in rig.bones if b["name"] == head][0]["head"][2]
    for k, x in enumerate((-0.06, 0.06)):  # hair hanging down the back
        prev = head
        for n in range(3):
            prev = rig.add(f"extra:hair{k}:{n}", prev, (x, 0.1, hz + 0.1 - 0.12 * n), (x, 0.12, hz - 0.02 - 0.12 * n))
    for x in (-0.06, 0.06):
        rig.add("extra:breast", chest, (x, -0.06, 1.25), (x, -0.14, 1.24))
        rig.add("extra:eye", head, (x * 0.5, -0.08, hz + 0.08), (x * 0.5, -0.1, hz + 0.08))
    rig.add("extra:jaw", head, (0, -0.02, hz + 0.02), (0, -0.1, hz - 0.02))
    for s in (".L", ".R"):
        ankle = [b for b in rig.bones if b["name"] == rig.truth[f"{_side(s)}_ankle"]][0]["head"]
        rig.add(f"extra:heel{s}", rig.truth[f"{_side(s)}_ankle"], (ankle[0], ankle[1] + 0.05, 0.0),
                (ankle[0] + 0.05, ankle[1] + 0.05, 0.0))
    hand = [b for b in rig.bones if b["name"] == rig.truth["right_wrist"]][0]
    rig.add("extra:weapon", hand["name"], hand["head"], hand["head"] + (0, -0.8, 0))


def _hips(rig: _Rig, parent):
    z = _jitter(rig.rng, 0.95)
    if rig.spec.split_pelvis:
        center = rig.add("center", parent, (0, 0, 0.55), (0, 0, 0.45))
        groove = rig.add("groove", center, (0, 0, 0.55), (0, 0, 0.62))
        lower = rig.add("lower", groove, (0, 0.01, z + 0.08), (0, 0.01, z - 0.05), "pelvis")
        upper = rig.add("upper", groove, (0, 0.01, z + 0.08), (0, 0.0, z + 0.2))
        rig.pelvis_z = z
        return lower, upper
    pelvis = rig.add("pelvis", parent, (0, 0, z), (0, 0, z + 0.1), "pelvis")
    rig.pelvis_z = z
    return pelvis, pelvis


def _spine(rig: _Rig, start: str) -> str:
    """Spine bones up to the chest (where the arms hang), then neck bones and the head."""
    spec, rng = rig.spec, rig.rng
    z0 = rig.pelvis_z + (0.08 if spec.split_pelvis else 0.0)
    top = _jitter(rng, 1.42, 0.03)
    n = spec.spine_bones
    zs = [z0 + (top - z0) * (k + (0 if spec.split_pelvis else 1)) / (n + (0 if spec.split_pelvis else 1))
          for k in range(n)]
    parent = start
    if spec.split_pelvis:  # 上半身 itself is the first spine bone
        zs = zs[1:]
    for k, z in enumerate(zs):
        parent = rig.add(f"spine:{k + 1}", parent, (0, 0.01 * (k % 2), z), (0, 0, z + 0.1))
    chest = parent
    z = top + 0.02
    neck_parent = chest
    for k in range(spec.neck_bones):
        nz = z + 0.05 * k
        neck_parent = rig.add(f"neck:{k + 1}", neck_parent, (0, 0.0, nz), (0, 0, nz + 0.05),
                              "neck" if k == 0 else None)
    head_z = z + 0.05 * max(spec.neck_bones, 1) + 0.04
    head = rig.add("head", neck_parent, (0, 0.0, head_z), (0, 0, head_z + 0.2), "head")
    if spec.head_end:
        rig.add("head_end", head, (0, 0, head_z + 0.2), (0, 0, head_z + 0.3))
    return chest


def _leg(rig: _Rig, pelvis: str, s: str, root) -> None:
    spec, rng = rig.spec, rig.rng
    x = 0.09 if s == ".L" else -0.09
    hip = np.array([x, 0.0, rig.pelvis_z - 0.04])
    knee = np.array([x * 1.05, -0.012, _jitter(rng, 0.50, 0.05)])
    ankle = np.array([x * 1.1, 0.02, _jitter(rng, 0.08, 0.1)])
    ball = np.array([x * 1.1, -0.10, 0.02])
    parent = pelvis
    if spec.helpers:
        parent = rig.add(f"helper:thigh{s}", parent, hip, hip + (0, 0, -0.05))
    thigh = _limb_bone(rig, "thigh", s, parent, hip, knee, f"{_side(s)}_hip")
    shin = _limb_bone(rig, "shin", s, thigh, knee, ankle, f"{_side(s)}_knee")
    foot = rig.add(f"foot{s}", shin, ankle, ball if spec.toes != "none" else ankle + (0, -0.12, -0.05),
                   f"{_side(s)}_ankle")
    if spec.toes == "ball":
        toe = rig.add(f"toe{s}", foot, ball, ball + (0, -0.07, 0), f"{_side(s)}_foot")
        rig.add(f"toe_end{s}", toe, ball + (0, -0.07, 0), ball + (0, -0.1, 0))
    elif spec.toes == "hub":
        for i in range(5):
            base = ball + (x * 0.3 * (i - 2) / 2, 0, 0)
            t1 = rig.add(f"toes5:{i + 1}:1{s}", foot, base, base + (0, -0.03, 0))
            rig.add(f"toes5:{i + 1}:2{s}", t1, base + (0, -0.03, 0), base + (0, -0.05, 0))
    if spec.helpers:
        ik = rig.add(f"ik:foot{s}", root, ankle, ankle + (0, 0.1, 0))
        pole = rig.add(f"pole:knee{s}", root, knee + (0, -0.4, 0), knee + (0, -0.45, 0))
        rig.helpers = getattr(rig, "helpers", []) + [ik, pole]


def _limb_bone(rig: _Rig, part: str, s: str, parent: str, head, tail, joint: str) -> str:
    """One limb segment, with the spec's twist bones: in series (the joint's bone, then a twist
    bone from a third of the way on), or on a side branch (twist bones under the joint's bone)."""
    head, tail = np.asarray(head, float), np.asarray(tail, float)
    if rig.spec.twist == "series":
        cut = head + (tail - head) * 0.4
        first = rig.add(f"bend:{part}{s}" if part in ("thigh", "upperarm") else f"{part}{s}", parent, head, cut, joint)
        return rig.add(f"twist:{part}:1{s}", first, cut, tail)
    bone = rig.add(f"{part}{s}", parent, head, tail, joint)
    if rig.spec.twist == "side":
        rig.add(f"twist:{part}:1{s}", bone, head, head + (tail - head) * 0.5)
        rig.add(f"twist:{part}:2{s}", bone, head + (tail - head) * 0.5, tail)
    return bone


def _arm_points(rig: _Rig, s: str):
    sign = 1.0 if s == ".L" else -1.0
    drop = {"T": 3.0, "A": 45.0, "I": 82.0}[rig.spec.pose]
    d = np.array([sign * math.cos(math.radians(drop)), 0.0, -math.sin(math.radians(drop))])
    shoulder = np.array([sign * _jitter(rig.rng, 0.17, 0.05), 0.0, 1.42])
    upper, fore = _jitter(rig.rng, 0.27, 0.06), _jitter(rig.rng, 0.26, 0.06)
    elbow = shoulder + d * upper + np.array([0, 0.01, 0])
    wrist = elbow + d * fore
    return shoulder, elbow, wrist, d


def _arm(rig: _Rig, chest: str, s: str) -> None:
    spec = rig.spec
    shoulder, elbow, wrist, d = _arm_points(rig, s)
    parent = chest
    if spec.collar:
        collar_head = np.array([0.03 if s == ".L" else -0.03, -0.02, 1.40])
        parent = rig.add(f"collar{s}", chest, collar_head, shoulder, f"{_side(s)}_collar")
    upper = _limb_bone(rig, "upperarm", s, parent, shoulder, elbow, f"{_side(s)}_shoulder")
    fore = _limb_bone(rig, "forearm", s, upper, elbow, wrist, f"{_side(s)}_elbow")
    hand_tip = wrist + d * 0.08
    hand = rig.add(f"hand{s}", fore, wrist, hand_tip, f"{_side(s)}_wrist")
    if spec.fingers:
        side = np.cross(d, [0, 0, 1.0])
        for i in range(5):
            base = hand_tip + side * 0.02 * (i - 2)
            f1 = rig.add(f"finger:{i + 1}:1{s}", hand, base, base + d * 0.03)
            f2 = rig.add(f"finger:{i + 1}:2{s}", f1, base + d * 0.03, base + d * 0.05)
            rig.add(f"finger:{i + 1}:3{s}", f2, base + d * 0.05, base + d * 0.07)


def _side(s: str) -> str:
    return "left" if s == ".L" else "right"


def _to_world(rig: _Rig) -> list[BoneInfo]:
    """Body frame (faces -Y, left +X, metres) → world: facing, yaw, scale; parents first."""
    spec = rig.spec
    turn = spec.yaw + (180.0 if spec.facing == "+Y" else 0.0)
    c, s = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    m = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) * spec.scale
    helpers = set(getattr(rig, "helpers", []))
    order = list(rig.bones)
    rng = random.Random(spec.seed + 1)
    rng.shuffle(order)
    placed, out = set(), []
    while order:  # parents first, siblings in a random order
        ready = [b for b in order if b["parent"] is None or b["parent"] in placed]
        for b in ready:
            placed.add(b["name"])
            out.append(BoneInfo(b["name"], b["parent"], _pt(m @ b["head"]), _pt(m @ b["tail"]),
                                helper=b["name"] in helpers))
        order = [b for b in order if b["name"] not in placed]
    assert len({b.name for b in out}) == len(out), "bone names must be unique"
    return out


def _pt(v) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def quadruped(seed: int = 0) -> list[BoneInfo]:
    """A four-legged animal: a horizontal spine, hind legs at the hips, front legs at the chest."""
    bones = [BoneInfo("hips", None, (0, 0.4, 0.9), (0, 0.2, 0.95)),
             BoneInfo("back", "hips", (0, 0.2, 0.95), (0, -0.2, 0.95)),
             BoneInfo("chest", "back", (0, -0.2, 0.95), (0, -0.45, 0.95)),
             BoneInfo("neck", "chest", (0, -0.45, 0.95), (0, -0.6, 1.2)),
             BoneInfo("head", "neck", (0, -0.6, 1.2), (0, -0.8, 1.2))]
    for name, parent, y in (("hind", "hips", 0.4), ("front", "chest", -0.4)):
        for side, x in (("L", 0.15), ("R", -0.15)):
            bones += [BoneInfo(f"{name}_upper_{side}", parent, (x, y, 0.85), (x, y + 0.05, 0.5)),
                      BoneInfo(f"{name}_lower_{side}", f"{name}_upper_{side}", (x, y + 0.05, 0.5), (x, y, 0.1)),
                      BoneInfo(f"{name}_paw_{side}", f"{name}_lower_{side}", (x, y, 0.1), (x, y - 0.1, 0.0)),
                      BoneInfo(f"{name}_toe_{side}", f"{name}_paw_{side}", (x, y - 0.1, 0.0), (x, y - 0.15, 0.0))]
    return bones


def one_armed(spec: Spec = Spec()) -> tuple[list[BoneInfo], str]:
    """A humanoid whose right arm is gone (every bone of it), and the name of the left hand."""
    bones, truth = build(spec)
    right = {truth[j] for j in ("right_collar", "right_shoulder") if j in truth}
    drop = set()
    for b in bones:
        if b.name in right or b.parent in drop:
            drop.add(b.name)
    return [b for b in bones if b.name not in drop], truth["left_wrist"]


def rest_from_bones(bones: list[BoneInfo], drivers: dict[str, str] | None = None, iks=()) -> RigRest:
    """A `RigRest` of these bones (world = armature space), each bone's Y axis along head → tail.
    `drivers`: bone → the bone whose rotation it copies; `iks`: (owner, chain, target) names."""
    from momask_blender.rig.rest import IKLink

    index = {b.name: i for i, b in enumerate(bones)}
    n = len(bones)
    mats = np.tile(np.eye(4), (n, 1, 1))
    for i, b in enumerate(bones):
        y = np.subtract(b.tail, b.head)
        y = y / max(np.linalg.norm(y), 1e-12)
        ref = np.array([0, 0, 1.0]) if abs(y[2]) < 0.9 else np.array([1.0, 0, 0])
        x = np.cross(y, ref)
        x /= np.linalg.norm(x)
        mats[i, :3, :3] = np.stack([x, y, np.cross(x, y)], axis=1)
        mats[i, :3, 3] = b.head
    drv = np.full(n, -1)
    for bone, src in (drivers or {}).items():
        drv[index[bone]] = index[src]
    return RigRest(names=tuple(b.name for b in bones), parents=np.array([index[b.parent] if b.parent else -1
                                                                          for b in bones]),
                   matrices=mats, tails=np.array([b.tail for b in bones], float), world=np.eye(4),
                   connected=np.zeros(n, bool), local_location=np.ones(n, bool), drivers=drv,
                   helpers=np.array([b.helper for b in bones]),
                   iks=tuple(IKLink(index[o], c, index[t]) for o, c, t in iks))

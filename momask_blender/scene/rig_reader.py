"""Read an armature's rest pose out of Blender into a plain `RigRest` (the one bpy → NumPy step).

Constraints are read here too, so the pure layers never see bpy: a bone whose rotation a Copy
Rotation / Copy Transforms constraint takes from another bone of the armature is *driven* by
that bone (keys belong on the driver), and the bones constraints aim at (IK goals and poles,
track and stretch targets) are *helpers*, never anatomical joints.
"""
from __future__ import annotations

import numpy as np

from ..errors import MomaskError
from ..rig.rest import BoneInfo, IKLink, RigRest, check_transform

DRIVING = ("COPY_ROTATION", "COPY_TRANSFORMS")
AIMING = ("IK", "DAMPED_TRACK", "TRACK_TO", "LOCKED_TRACK", "STRETCH_TO", "COPY_LOCATION", "SPLINE_IK")
MIN_INFLUENCE = 0.5


def check_armature(obj) -> None:
    """Raise MomaskError unless `obj` is a local armature object we may animate."""
    if obj is None:
        raise MomaskError("no active object: select the armature to animate")
    if obj.type != "ARMATURE":
        raise MomaskError(f"'{obj.name}' is a {obj.type.lower()}, not an armature: select an armature")
    if obj.library is not None:
        raise MomaskError(f"armature '{obj.name}' is linked from {obj.library.filepath} and cannot take an "
                          "action: make a library override of it (select it, then Object > Library Override > "
                          "Make) or make it local (Object > Relations > Make Local)")
    override = obj.override_library
    if override is not None and override.is_system_override:
        raise MomaskError(f"armature '{obj.name}' is a library override that is not editable: make it editable "
                          "(in the Outliner, right-click it > Library Override > Make > Selected)")
    # An editable override's own animation data is local; its bones (linked armature data) are only read.
    if len(obj.data.bones) == 0:
        raise MomaskError(f"armature '{obj.name}' has no bones")
    check_transform(np.array(obj.matrix_world), obj.name)


def _parents_first(bones) -> list:
    order, seen = [], set()

    def visit(b):
        if b.name in seen:
            return
        if b.parent is not None:
            visit(b.parent)
        seen.add(b.name)
        order.append(b)

    for b in bones:
        visit(b)
    return order


def read_rig(obj, parents: dict[str, str | None] | None = None) -> RigRest:
    """The whole armature, or only the bones of `parents` (name → parent name, parents first)."""
    if parents is None:
        bones = _parents_first(obj.data.bones)
        parents = {b.name: b.parent.name if b.parent else None for b in bones}
    names = list(parents)
    index = {n: i for i, n in enumerate(names)}
    bones = [obj.data.bones[n] for n in names]
    drivers, helpers, iks = constraint_roles(obj, index)
    return RigRest(
        names=tuple(names),
        parents=np.array([index[parents[n]] if parents[n] else -1 for n in names], dtype=int),
        matrices=np.array([np.array(b.matrix_local) for b in bones]).reshape(len(bones), 4, 4),
        tails=np.array([tuple(b.tail_local) for b in bones]).reshape(len(bones), 3),
        world=np.array(obj.matrix_world),
        connected=np.array([b.use_connect for b in bones], dtype=bool),
        local_location=np.array([b.use_local_location for b in bones], dtype=bool),
        drivers=drivers, helpers=helpers, iks=iks,
        deform=np.array([b.use_deform for b in bones], dtype=bool),
    )


def constraint_roles(obj, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, tuple[IKLink, ...]]:
    """(drivers, helpers, IK links) for the bones of `index` from the pose bones' active constraints."""
    drivers = np.full(len(index), -1, dtype=int)
    helpers = np.zeros(len(index), dtype=bool)
    iks = []
    for name, i in index.items():
        pb = obj.pose.bones.get(name)
        for c in pb.constraints if pb is not None else ():
            if c.mute or not getattr(c, "enabled", True) or c.influence < MIN_INFLUENCE:
                continue
            sub = index.get(getattr(c, "subtarget", ""), -1) if getattr(c, "target", None) == obj else -1
            pole = index.get(getattr(c, "pole_subtarget", ""), -1) if getattr(c, "pole_target", None) == obj else -1
            if sub >= 0 and sub != i and c.type in DRIVING:
                drivers[i] = sub
            elif sub >= 0 and sub != i and c.type in AIMING:
                helpers[sub] = True
            if pole >= 0:
                helpers[pole] = True
            if c.type == "IK" and sub >= 0 and sub != i:
                iks.append(IKLink(i, int(c.chain_count), sub, pole, bool(c.use_tail)))
    return drivers, helpers, tuple(iks)


def bone_infos(obj) -> list[BoneInfo]:
    """The armature's bones as detection reads them: world-space rest geometry, constraint roles."""
    return read_rig(obj).bone_infos()


def rig_key(obj) -> tuple:
    """A cheap fingerprint of the rest pose (names, heads, tails, placement) for caches that the
    sidebar asks on every redraw."""
    bones = obj.data.bones
    n = len(bones)
    heads = np.empty(3 * n, dtype=np.float32)
    tails = np.empty(3 * n, dtype=np.float32)
    bones.foreach_get("head_local", heads)
    bones.foreach_get("tail_local", tails)
    world = np.array(obj.matrix_world, dtype=np.float32)
    return (obj.as_pointer(), tuple(bones.keys()), heads.tobytes(), tails.tobytes(), world.tobytes(),
            sum(len(pb.constraints) for pb in obj.pose.bones))

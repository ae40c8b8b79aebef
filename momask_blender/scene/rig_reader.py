"""Read an armature's rest pose out of Blender into a plain `RigRest` (the one bpy → NumPy step)."""
from __future__ import annotations

import numpy as np

from ..errors import MomaskError
from ..rig.bone_map import BoneInfo
from ..rig.rest import RigRest


def check_armature(obj) -> None:
    """Raise MomaskError unless `obj` is a local armature object we may animate."""
    if obj is None:
        raise MomaskError("no active object: select the armature to animate")
    if obj.type != "ARMATURE":
        raise MomaskError(f"'{obj.name}' is a {obj.type.lower()}, not an armature: select an armature")
    if obj.library is not None or obj.data.library is not None:
        raise MomaskError(f"armature '{obj.name}' is linked from a library file: make it local "
                          "(Object > Relations > Make Local) or add a library override first")
    if len(obj.data.bones) == 0:
        raise MomaskError(f"armature '{obj.name}' has no bones")


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
    if parents is not None:
        return _read_subset(obj, parents)
    bones = _parents_first(obj.data.bones)
    index = {b.name: i for i, b in enumerate(bones)}
    n = len(bones)
    mats = np.empty((n, 4, 4))
    tails = np.empty((n, 3))
    for i, b in enumerate(bones):
        mats[i] = np.array(b.matrix_local)
        tails[i] = b.tail_local
    return RigRest(
        names=tuple(b.name for b in bones),
        parents=np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=int),
        matrices=mats,
        tails=tails,
        world=np.array(obj.matrix_world),
        connected=np.array([b.use_connect for b in bones], dtype=bool),
        local_location=np.array([b.use_local_location for b in bones], dtype=bool),
    )


def bone_infos(obj) -> list[BoneInfo]:
    return [BoneInfo(b.name, b.parent.name if b.parent else None) for b in _parents_first(obj.data.bones)]


def _read_subset(obj, parents: dict[str, str | None]) -> RigRest:
    names = list(parents)
    index = {n: i for i, n in enumerate(names)}
    bones = [obj.data.bones[n] for n in names]
    return RigRest(
        names=tuple(names),
        parents=np.array([index[parents[n]] if parents[n] else -1 for n in names], dtype=int),
        matrices=np.array([np.array(b.matrix_local) for b in bones]).reshape(len(bones), 4, 4),
        tails=np.array([tuple(b.tail_local) for b in bones]).reshape(len(bones), 3),
        world=np.array(obj.matrix_world),
        connected=np.array([b.use_connect for b in bones], dtype=bool),
        local_location=np.array([b.use_local_location for b in bones], dtype=bool),
    )

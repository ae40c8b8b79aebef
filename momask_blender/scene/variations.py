"""Variations: one generation, several Actions, one of them on the armature at a time.

Generate with N variations makes N Actions in one batch (variation k uses seed + k, as
model_core does) and records them in the scene's list; the sidebar switches the armature between
them with one click (one undo step) and removes the others only when the user asks.

The bookkeeping is plain functions on plain data (tested without Blender); the functions at the
end are the thin bpy part that the operators and the list's index call.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    action: str   # the Action's name
    seed: int


def seeds(seed: int, count: int) -> list[int]:
    """The seed of each variation: model_core gives variation k the seed `seed + k`."""
    return [seed + k for k in range(count)]


def entries(action_names: Sequence[str], seed: int) -> list[Entry]:
    return [Entry(name, s) for name, s in zip(action_names, seeds(seed, len(action_names)), strict=True)]


def label(index: int, entry: Entry) -> str:
    return f"v{index + 1}  ·  seed {entry.seed}"


def clamp(index: int, count: int) -> int:
    """A valid list index (0 for an empty list)."""
    return min(max(index, 0), max(count - 1, 0))


def to_remove(names: Sequence[str], keep: int, used_elsewhere: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(actions to delete, actions kept because something else uses them) when keeping entry `keep`."""
    if not 0 <= keep < len(names):
        raise IndexError(f"no variation {keep + 1}: there are {len(names)}")
    others = [n for i, n in enumerate(names) if i != keep and n != names[keep]]
    busy = [n for n in others if n in set(used_elsewhere)]
    return [n for n in others if n not in busy], busy


# ----------------------------------------------------------------------------- bpy part


def record(settings, obj, actions, seed: int) -> None:
    """Replace the scene's variation list with this batch (a single Action clears the list)."""
    settings.variation_items.clear()
    settings.variation_armature = obj.name
    if len(actions) < 2:
        settings["variation_index"] = 0  # no update callback: nothing to switch
        return
    for act, entry in zip(actions, entries([a.name for a in actions], seed), strict=True):
        item = settings.variation_items.add()
        item.action = act
        item.seed = entry.seed
        item.name = act.name
    settings["variation_index"] = 0


def assign(obj, action) -> None:
    """Put `action` on `obj` (with its first slot on Blender 4.4+). Other Actions are untouched."""
    anim = obj.animation_data or obj.animation_data_create()
    anim.action = action
    if hasattr(anim, "action_slot") and len(action.slots):
        anim.action_slot = action.slots[0]


def armature_of(settings):
    import bpy

    obj = bpy.data.objects.get(settings.variation_armature) if settings.variation_armature else None
    return obj if obj is not None and obj.type == "ARMATURE" else None


def switch(settings, index: int) -> str:
    """Play variation `index` on its armature; returns the Action's name. Raises LookupError."""
    if not 0 <= index < len(settings.variation_items):
        raise LookupError(f"no variation {index + 1}: the list has {len(settings.variation_items)}")
    obj = armature_of(settings)
    if obj is None:
        raise LookupError(f"the armature '{settings.variation_armature}' of these variations is gone")
    action = settings.variation_items[index].action
    if action is None:
        raise LookupError(f"variation {index + 1}'s action was deleted")
    assign(obj, action)
    return action.name


def remove_others(settings, keep: int) -> tuple[list[str], list[str]]:
    """Delete every variation's Action but `keep`'s; returns (removed, kept because used elsewhere)."""
    import bpy

    obj = armature_of(settings)
    items = list(settings.variation_items)
    names = [it.action.name if it.action else "" for it in items]
    chosen = items[keep].action if 0 <= keep < len(items) else None
    if chosen is None:
        raise LookupError(f"variation {keep + 1} has no action")
    if obj is not None:
        assign(obj, chosen)
    settings.variation_items.clear()  # drop the list's own references first
    settings["variation_index"] = 0
    actions = [bpy.data.actions.get(n) for n in names]
    used = [a.name for a in actions if a is not None and a != chosen and a.users > int(a.use_fake_user)]
    remove, busy = to_remove([n for n in names if n], [n for n in names if n].index(chosen.name), used)
    for name in remove:
        act = bpy.data.actions.get(name)
        if act is not None:
            bpy.data.actions.remove(act)
    if obj is not None:
        chosen.use_fake_user = False  # the armature uses it now; the fake users were only for choosing
    return remove, busy

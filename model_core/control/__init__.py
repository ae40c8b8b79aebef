"""Directed generation: constraints (a joint at a frame at a position) and how motions meet them.

`parse_constraints` reads the JSON format (`read_constraints`: a file of it);
`MoMask.generate(..., constraints=...)` (and `edit`, the timeline's range edits and prompt
sequences) return motions that meet them. How: the model generates freely, then an analytic pass
turns and moves the root and eases the bones into the targets (`direct`), smoothly and only near
them. NumPy only.
"""
from .apply import meet_constraints
from .constraints import JOINT_NAMES, Constraint, Facing, parse_constraints
from .files import read_constraints

__all__ = ["JOINT_NAMES", "Constraint", "Facing", "meet_constraints", "parse_constraints", "read_constraints"]

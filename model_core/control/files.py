"""A constraints file on disk (`--constraints FILE.json`, the add-on's constraints file): read and checked.

One reader for every door, so a file gives the same constraints, or the same message, whichever
command line or panel it was given to.
"""
from __future__ import annotations

import json

from ..errors import ModelError
from ..inputs.text import read_text
from .constraints import Constraint, Facing, parse_constraints


def read_constraints(path) -> list[Constraint | Facing]:
    """The constraints (and facings) of a `{"constraints": [...]}` file; errors name the file."""
    text = read_text(path, "constraints file")
    try:
        data = json.loads(text)  # NaN and Infinity parse: the check names them
    except json.JSONDecodeError as err:
        raise ModelError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise ModelError(f"{path}: not valid JSON (nested too deeply)") from None
    try:
        return parse_constraints(data)
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from None

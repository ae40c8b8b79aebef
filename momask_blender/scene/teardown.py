"""Leaving a process that imported Blender as a Python module (bpy).

The bpy 4.2 wheel segfaults at interpreter exit once any class whose properties have Python
callbacks was registered (Rigify's, or ours: the bone-map editor's get/set, the variation list's
update, the device enum's items): its static destructors free Python classes after Python has
been finalised (`bpy_class_free` -> `PyGILState_Ensure` with no interpreter), which turns a
success into exit status -11. Blender 4.2 itself and bpy 4.3 and later exit cleanly. The command
lines and the test run on 4.2 (tests/exit_bpy42.py) leave through here, so their exit status
reports their work, not the teardown.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn


def crashes_at_exit() -> bool:
    """True when this process imported a bpy module whose teardown crashes (bpy 4.2)."""
    bpy = sys.modules.get("bpy")
    return bpy is not None and bpy.app.version < (4, 3, 0)


def leave_if_teardown_crashes(code: int) -> None:
    """On such a bpy, end the process now with `code`, after flushing what was printed; else return."""
    if crashes_at_exit():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def exit_process(code: int) -> NoReturn:
    """Exit with `code`, past bpy 4.2's crashing teardown (the command lines' way out)."""
    leave_if_teardown_crashes(code)
    sys.exit(code)

"""pytest plugin for `make test-blender42`: leave the process before the bpy 4.2 module crashes.

The `bpy==4.2.*` wheel (Blender as a Python module) segfaults at interpreter exit once any class
whose properties have Python callbacks was registered: rigify's, or ours (the bone-map editor's
get/set, the variation list's update, the device enum's items). Its static destructors free
Python classes after Python has been finalised (`bpy_class_free` -> `PyGILState_Ensure` with no
interpreter). Blender 4.2 itself and bpy 5.0 exit cleanly. This plugin ends the test process with
pytest's own exit status once pytest is done, so the status reports the tests, not the teardown.
"""
from __future__ import annotations

import os
import sys

_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    bpy = sys.modules.get("bpy")
    if bpy is None or bpy.app.version >= (4, 3, 0):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["code"])

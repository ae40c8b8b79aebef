"""pytest plugin for `make test-blender42`: leave the process before the bpy 4.2 module crashes.

The `bpy==4.2.*` wheel segfaults at interpreter exit once a class whose properties have Python
callbacks was registered (see momask_blender.scene.teardown). This plugin ends the test process
with pytest's own exit status once pytest is done, so the status reports the tests, not the
teardown.
"""
from __future__ import annotations

_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    from momask_blender.scene.teardown import leave_if_teardown_crashes

    leave_if_teardown_crashes(_status["code"])

"""Where the model runs, in the preferences: in Blender, the add-on's local server, or a (studio) server.

The preferences hold the choice, the server's address and token (add-on preferences live in
Blender's user preferences, never in a .blend; no operator or scene property copies the token).
`place(context, ...)` turns the choice into the `Generation` fields a job needs; the jobs then
ask `jobs.model_cache.model_for`, which gives them a local `MoMask` or a `RemoteModel` with the
same calls, so every operator works either way with the same progress, cancel and undo.
"""
from __future__ import annotations

import bpy

from ..errors import MomaskError
from ..setup import local_server
from ..setup.weights import WHERE
from . import preferences

_STATUS_EVERY_S = 1.0


def server_python(prefs) -> str:
    return bpy.path.abspath(prefs.server_python) if prefs.server_python else local_server.default_python()


def place(context, checkpoints: str, clip: str, device: str) -> dict:
    """`Generation` fields for where the preferences say the model runs (starting the local server if
    that is the choice: the job waits for it, with progress and cancel); in Blender, its Threads."""
    prefs = preferences.get(context)
    where = prefs.model_location if prefs is not None else "BLENDER"
    if where == "SERVER":
        if not prefs.server_url.strip():
            raise MomaskError(f"no server address: set it in {WHERE} (or choose where the model runs)")
        return {"server": prefs.server_url.strip(), "token": prefs.server_token.strip()}
    if where == "LOCAL_SERVER":
        from ..setup.weights import check_paths

        check_paths(checkpoints, clip)
        server = local_server.start(server_python(prefs), checkpoints, clip, device or "auto",
                                    preferences.user_dir(create=True))
        watch()
        return {"server": server.url, "token": server.token, "local_server": True}
    return {"threads": prefs.threads} if prefs is not None else {}


# ----------------------------------------------------------------------------- the status line


def watch() -> None:
    """Keep the preferences' status line fresh while the local server starts and runs."""
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=0.2, persistent=True)


def _tick():
    state, _ = local_server.refresh_status()
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()
    return _STATUS_EVERY_S if state in ("starting", "running") else None


# ----------------------------------------------------------------------------- operators


class MOMASK_OT_start_local_server(bpy.types.Operator):
    """Run the model server in its own Python beside Blender (stopped when Blender quits)"""

    bl_idname = "momask.start_local_server"
    bl_label = "Start Local Server"

    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"},
                                 description="Return once the server answers (scripts)")

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            place_local = dict(checkpoints=bpy.path.abspath(prefs.checkpoints), clip=bpy.path.abspath(prefs.clip),
                               device=preferences.model_device(prefs))
            prefs.model_location = "LOCAL_SERVER"
            server = place(context, **place_local)
            if self.wait:
                local_server.wait_ready(server)
        except MomaskError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, local_server.refresh_status()[1])
        return {"FINISHED"}


class MOMASK_OT_stop_local_server(bpy.types.Operator):
    """Stop the local model server"""

    bl_idname = "momask.stop_local_server"
    bl_label = "Stop"

    @classmethod
    def poll(cls, context):
        return local_server.current() is not None

    def execute(self, context):
        local_server.stop()
        local_server.refresh_status()
        self.report({"INFO"}, "Local server stopped")
        return {"FINISHED"}


class MOMASK_OT_test_server(bpy.types.Operator):
    """Ask the server whether it is up, and what it runs"""

    bl_idname = "momask.test_server"
    bl_label = "Test Connection"

    def execute(self, context):
        from model_core.serve.client import Client, ServerError

        prefs = preferences.get(context)
        try:
            health = Client(prefs.server_url.strip(), prefs.server_token.strip() or None).health()
        except ServerError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        models = health.get("models", {})
        self.report({"INFO"}, f"Connected: MoMask server {health.get('version')} on {health.get('device')} "
                              f"({health.get('engine')}), {models.get('dataset')} {models.get('mask_transformer')}")
        return {"FINISHED"}


def unregister_server() -> None:
    """Disabling the add-on stops its server."""
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    local_server.stop()


classes = (MOMASK_OT_start_local_server, MOMASK_OT_stop_local_server, MOMASK_OT_test_server)

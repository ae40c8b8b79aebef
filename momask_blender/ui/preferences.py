"""The extension's preferences: where the model files are, PyTorch, device, and installing both.

Nothing here imports PyTorch at register time: the add-on registers without it and says what is
missing. Installs (PyTorch with pip, the weights from a file or a download) are modal jobs with
a progress bar and Cancel, like Generate (see `modal.py`).
"""
from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import bpy

from ..errors import MomaskError
from ..jobs.modal import ModalJobOperator
from ..setup import local_server, model_status, pytorch

# The add-on's own package: the extension root (e.g. 'bl_ext.user_default.momask') when installed,
# this package itself when registered straight from a checkout (tests, the command line).
ADDON_ID = __package__.rpartition(".")[0] or __package__

_STATUS_TTL = 2.0  # seconds a file-status line is reused between redraws
_status_cache: dict[tuple[str, str], tuple[float, model_status.Status]] = {}


def user_dir(create: bool = False) -> Path:
    """The extension's own folder for PyTorch and the weights (Blender's user resources from a checkout)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_ID, create=create))
    except ValueError:  # registered from a checkout, not installed as an extension
        return Path(bpy.utils.user_resource("DATAFILES", path="momask", create=create))


def _status(kind: str, path: str) -> model_status.Status:
    now = time.monotonic()
    hit = _status_cache.get((kind, path))
    if hit is not None and now - hit[0] < _STATUS_TTL:
        return hit[1]
    status = model_status.checkpoints(path) if kind == "checkpoints" else model_status.clip(path)
    _status_cache[(kind, path)] = (now, status)
    return status


# ----------------------------------------------------------------------------- device


_cuda: dict[str, object] = {}
_device_items_ref: list = []  # Blender needs the items of a dynamic enum kept alive


def cuda_name() -> str | None:
    """The first CUDA device's name when PyTorch sees one; never imports a missing PyTorch."""
    if "name" not in _cuda:
        name = None
        if pytorch.module_available("torch"):
            try:
                import torch

                if torch.cuda.is_available():
                    name = torch.cuda.get_device_name(0)
            except Exception as err:  # noqa: BLE001 - a broken PyTorch must not break the preferences
                print(f"MoMask: cannot ask PyTorch about CUDA: {err}")
        _cuda["name"] = name
    return _cuda["name"]


def _device_items(self, context):
    items = [("cpu", "CPU", "Run the model on the processor", 0)]
    name = cuda_name()
    if name:
        items.append(("cuda", "CUDA", f"Run the model on {name}", 1))
    _device_items_ref[:] = items
    return _device_items_ref


def _get_device(self) -> int:
    return self.device_value


def _set_device(self, value: int) -> None:
    self.device_value = value


def model_device(prefs) -> str:
    """The device to load the model on, read without asking PyTorch (that would import it on the main
    thread); CUDA chosen but gone is the model loader's clear error, in the worker."""
    if prefs is None:
        return "cpu"
    return "cuda" if prefs.device_value == 1 else "cpu"


# ----------------------------------------------------------------------------- the preferences

LOCATIONS = [
    ("BLENDER", "In Blender", "Load the model into Blender's Python (needs PyTorch in Blender)"),
    ("LOCAL_SERVER", "Local Server",
     "Run the model in its own Python beside Blender (a virtual environment with PyTorch); Blender needs no PyTorch"),
    ("SERVER", "Server", "Send the work to a MoMask server (python -m model_core serve), e.g. a studio GPU machine"),
]


class MOMASK_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    checkpoints: bpy.props.StringProperty(
        name="Checkpoint Folder", subtype="DIR_PATH",
        description="The official MoMask 'checkpoints' folder (holding t2m/)")
    clip: bpy.props.StringProperty(
        name="CLIP File", subtype="FILE_PATH", description="OpenAI's ViT-B-32.pt")
    device: bpy.props.EnumProperty(name="Device", items=_device_items, get=_get_device, set=_set_device,
                                   description="Where the model runs (CUDA when PyTorch sees an NVIDIA GPU)")
    device_value: bpy.props.IntProperty(options={"HIDDEN"}, description="The device's enum value, stored")
    threads: bpy.props.IntProperty(name="Threads", default=0, min=0, max=256,
                                   description="CPU threads for the model; 0: PyTorch's default (all cores)")
    torch_variant: bpy.props.EnumProperty(
        name="Build", items=[(v, label, "") for v, label in pytorch.torch_variants()],
        description="Which PyTorch build to install")
    # where the model runs (ui.server_ops): the token stays here, in the user preferences, never in a .blend
    model_location: bpy.props.EnumProperty(name="Model Runs", items=LOCATIONS, default="BLENDER",
                                           description="Where the model runs: in Blender, beside it, or on a server")
    server_url: bpy.props.StringProperty(name="Server", default="http://127.0.0.1:8790",
                                         description="The MoMask server's address (python -m model_core serve)")
    server_token: bpy.props.StringProperty(name="Token", subtype="PASSWORD",
                                           description="The server's token (sent as 'Authorization: Bearer ...')")
    server_python: bpy.props.StringProperty(
        name="Server Python", subtype="FILE_PATH",
        description="The Python that runs the local server (one with PyTorch); empty: the checkout's .venv")

    def draw(self, context):
        layout = self.layout
        _draw_job(layout, context)
        _draw_model_place(self, layout)

        box = layout.box()
        box.label(text="Model Files", icon="FILE_FOLDER")
        for prop, kind in (("checkpoints", "checkpoints"), ("clip", "clip")):
            col = box.column(align=True)
            col.prop(self, prop)
            status = _status(kind, bpy.path.abspath(getattr(self, prop)))
            row = col.row()
            row.alert = not status.ok
            row.label(text=status.text, icon="CHECKMARK" if status.ok else "ERROR")
        row = box.row(align=True)
        row.operator("momask.install_weights", icon="IMPORT")
        if bpy.app.online_access:
            row.operator("momask.download_weights", icon="URL")
        else:
            box.label(text="Download needs online access (Preferences > System > Network)", icon="INFO")

        box = layout.box()
        box.label(text="Runtime", icon="SETTINGS")
        if self.model_location != "BLENDER":
            box.label(text="PyTorch in Blender: not needed (the model runs outside Blender)", icon="CHECKMARK")
        elif pytorch.module_available("torch"):
            box.label(text="PyTorch: installed", icon="CHECKMARK")
        else:
            _draw_torch_missing(box, self)
        row = box.row()
        row.prop(self, "device")
        row.prop(self, "threads")
        _draw_thread_policy(box)
        if self.device_value == 1 and not cuda_name():
            row = box.row()
            row.alert = True
            row.label(text="CUDA is chosen, but PyTorch sees no CUDA GPU: choose CPU", icon="ERROR")
        from ..jobs import model_cache

        row = box.row()
        row.label(text="Model: loaded in memory" if model_cache.loaded() else "Model: not loaded")
        row.operator("momask.unload_model", icon="TRASH")


def _draw_thread_policy(box) -> None:
    """A warning when PyTorch was loaded before the add-on could set how its threads wait."""
    try:
        from model_core import threads
    except ImportError:
        return
    if threads.applied_at_import() == threads.TOO_LATE:
        col = box.column(align=True)
        col.alert = True
        for line in textwrap.wrap(threads.status(), 90):
            col.label(text=line)


def _draw_job(layout, context) -> None:
    job = getattr(context.window_manager, "momask_job", None)
    if job is None or not (job.running or job.message):
        return
    box = layout.box()
    if job.running:
        row = box.row(align=True)
        row.progress(factor=job.progress, type="BAR", text=f"{job.label}: {job.stage or 'starting'}")
        row.operator("momask.cancel_job", text="", icon="CANCEL")
    elif job.state in ("failed", "cancelled"):
        row = box.row()
        row.alert = job.state == "failed"
        row.label(text=job.message[:200], icon="ERROR" if job.state == "failed" else "INFO")


def _draw_model_place(prefs, layout) -> None:
    """Where the model runs (the operators are `server_ops`'s)."""
    box = layout.box()
    box.label(text="Where the Model Runs", icon="NETWORK_DRIVE")
    box.row().prop(prefs, "model_location", expand=True)
    if prefs.model_location == "SERVER":
        col = box.column(align=True)
        col.prop(prefs, "server_url")
        col.prop(prefs, "server_token")
        box.operator("momask.test_server", icon="LINKED")
    elif prefs.model_location == "LOCAL_SERVER":
        box.prop(prefs, "server_python")
        if not prefs.server_python:
            found = local_server.default_python()
            box.label(text=f"Using {found}" if found else "No virtual environment found: set Server Python",
                      icon="INFO" if found else "ERROR")
        state, text = local_server.last_status
        row = box.row()
        row.alert = state == "exited"
        row.label(text=text, icon={"running": "CHECKMARK", "exited": "ERROR"}.get(state, "TIME"))
        row = box.row(align=True)
        row.operator("momask.start_local_server", icon="PLAY")
        row.operator("momask.stop_local_server", icon="PAUSE")


def _draw_torch_missing(box, prefs) -> None:
    row = box.row()
    row.alert = True
    row.label(text="PyTorch is missing: MoMask cannot run without it", icon="ERROR")
    if bpy.app.online_access:
        row = box.row(align=True)
        row.prop(prefs, "torch_variant", text="")
        row.operator("momask.install_torch", icon="IMPORT")
        return
    col = box.column(align=True)
    for line in pytorch.manual_instructions(pytorch.deps_dir(user_dir()), prefs.torch_variant).splitlines():
        if line.strip():
            col.label(text=line.strip())
    col.operator("momask.copy_torch_command", icon="COPYDOWN")


def get(context) -> MOMASK_AP_preferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


# ----------------------------------------------------------------------------- installing PyTorch


class MOMASK_OT_install_torch(ModalJobOperator, bpy.types.Operator):
    """Install PyTorch with pip into the extension's folder (needs online access)"""

    bl_idname = "momask.install_torch"
    bl_label = "Install PyTorch"
    job_label = "Installing PyTorch"
    job_errors = (MomaskError, pytorch.DepsError)

    variant: bpy.props.StringProperty(name="Build", default="", description="cpu, cu126, cu128; empty: preferences")

    def job_prepare(self, context):
        prefs = get(context)
        variant = self.variant or (prefs.torch_variant if prefs else "cpu")
        target = pytorch.deps_dir(user_dir())
        if not bpy.app.online_access:
            raise MomaskError(pytorch.manual_instructions(target, variant))
        user_dir(create=True)
        return target, variant

    def job_compute(self, data, progress):
        target, variant = data
        lines = [0]

        def on_line(line: str) -> None:
            lines[0] += 1
            progress.note(f"pip: {line.strip()[:70]}", 1.0 - 1.0 / (1.0 + lines[0] / 40.0))

        progress("pip", 0.0)
        return pytorch.install_torch(target, variant, allow_online=True, on_line=on_line, cancel=progress.cancel_event)

    def job_apply(self, context, target):
        pytorch.add_to_sys_path(target)
        _cuda.clear()
        return f"PyTorch installed into {target}"


class MOMASK_OT_copy_torch_command(bpy.types.Operator):
    """Copy the pip command that installs PyTorch, to run it in a terminal"""

    bl_idname = "momask.copy_torch_command"
    bl_label = "Copy Command"

    def execute(self, context):
        prefs = get(context)
        cmd = pytorch.pip_install_command(pytorch.deps_dir(user_dir()), prefs.torch_variant if prefs else "cpu")
        context.window_manager.clipboard = pytorch.command_line(cmd)
        self.report({"INFO"}, "pip command copied")
        return {"FINISHED"}


# ----------------------------------------------------------------------------- installing the weights


def _use_installed(context, root: Path) -> str:
    """Point the preferences at what was installed under `root`; returns what changed."""
    prefs = get(context)
    from ..setup.assets import CLIP_REL

    changed = []
    if prefs is not None:
        if (root / "checkpoints").is_dir():
            prefs.checkpoints = str(root / "checkpoints")
            changed.append("checkpoint folder")
        if (root / CLIP_REL).is_file():
            prefs.clip = str(root / CLIP_REL)
            changed.append("CLIP file")
    _status_cache.clear()
    return f"{' and '.join(changed) or 'nothing'} set in the preferences"


def _install_errors():
    from ..setup.download import DownloadError
    from ..setup.install import InstallError

    return (MomaskError, InstallError, DownloadError)


class MOMASK_OT_install_weights(bpy.types.Operator):
    """Install weights you downloaded: the official humanml3d_models.zip or checkpoints folder, or ViT-B-32.pt"""

    bl_idname = "momask.install_weights"
    bl_label = "Install from File…"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.zip;*.pt", options={"HIDDEN"})

    def execute(self, context):
        mode = "INVOKE_DEFAULT" if context.window is not None and not bpy.app.background else "EXEC_DEFAULT"
        return bpy.ops.momask.install_weights_run(mode, filepath=self.filepath)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class MOMASK_OT_install_weights_run(ModalJobOperator, bpy.types.Operator):
    """Unpack or copy the chosen weights into the extension's folder"""

    bl_idname = "momask.install_weights_run"
    bl_label = "Install Weights"
    bl_options = {"INTERNAL"}
    job_label = "Installing weights"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")

    @property
    def job_errors(self):
        return _install_errors()

    def job_prepare(self, context):
        path = Path(bpy.path.abspath(self.filepath))
        if not self.filepath or not path.exists():
            raise MomaskError(f"nothing to install: {path} does not exist")
        return path, user_dir(create=True)

    def job_compute(self, data, progress):
        from ..jobs.worker import bytes_progress
        from ..setup.install import install_from_path

        path, root = data
        progress("installing", 0.0)
        return root, install_from_path(path, root, release=None, progress=bytes_progress(progress.note, "copying"),
                                       cancel=progress.cancel_event)

    def job_apply(self, context, result):
        root, paths = result
        return f"Installed {len(paths)} file(s) into {root}; {_use_installed(context, root)}"


class MOMASK_OT_download_weights(ModalJobOperator, bpy.types.Operator):
    """Download the official MoMask weights and OpenAI's ViT-B-32.pt into the extension's folder"""

    bl_idname = "momask.download_weights"
    bl_label = "Download"
    job_label = "Downloading weights"

    @property
    def job_errors(self):
        return _install_errors()

    def job_prepare(self, context):
        from ..setup.install import offline_instructions

        root = user_dir()
        if not bpy.app.online_access:
            raise MomaskError(offline_instructions(root))
        return user_dir(create=True)

    def job_compute(self, root, progress):
        from ..jobs.worker import bytes_progress, scaled
        from ..setup.assets import CLIP_REL, checkpoints_rel
        from ..setup.install import download_clip, download_models

        if not (root / CLIP_REL).is_file():
            part = scaled(progress.note, 0.0, 0.3)
            download_clip(root, allow_online=True, progress=bytes_progress(part, "ViT-B-32.pt"),
                          cancel=progress.cancel_event)
        if not (root / checkpoints_rel()).is_dir():
            part = scaled(progress.note, 0.3, 1.0)
            download_models(root, allow_online=True, progress=bytes_progress(part, "models"),
                            cancel=progress.cancel_event)
        return root

    def job_apply(self, context, root):
        return f"Weights ready in {root}; {_use_installed(context, root)}"


classes = (MOMASK_AP_preferences, MOMASK_OT_install_torch, MOMASK_OT_copy_torch_command,
           MOMASK_OT_install_weights, MOMASK_OT_install_weights_run, MOMASK_OT_download_weights)


_added_paths: list[str] = []


def add_user_site() -> None:
    """Make a PyTorch installed by 'Install PyTorch' importable (called by register)."""
    folder = pytorch.deps_dir(user_dir())
    if pytorch.add_to_sys_path(folder):
        _added_paths.append(str(folder))


def remove_user_site() -> None:
    while _added_paths:
        path = _added_paths.pop()
        if path in sys.path:
            sys.path.remove(path)

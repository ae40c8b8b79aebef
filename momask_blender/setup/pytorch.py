"""PyTorch for the extension: is it importable, and install it with pip into the extension's folder.

PyTorch (hundreds of MB) cannot ship inside the extension zip, so the preferences offer to pip
install it into the extension's user folder. Pure Python: the operator runs `install_torch` in a
worker thread with `on_line` (pip's output, line by line) and a cancel flag, and only when
`bpy.app.online_access` allows it; otherwise it shows `manual_instructions(...)`.
"""
from __future__ import annotations

import importlib.util
import os
import queue
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .download import CancelFlag, is_cancelled

LineFn = Callable[[str], None]

# PyTorch's own package index per build: "cpu" keeps Linux from pulling ~3 GB of CUDA libraries.
TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cu126": "https://download.pytorch.org/whl/cu126",
    "cu128": "https://download.pytorch.org/whl/cu128",
}
# What model_core needs at run time; all but torch arrive as wheels inside the extension.
RUNTIME_MODULES = ("torch", "numpy", "ftfy", "regex")
_TAIL = 20  # pip lines kept for an error message


class DepsError(Exception):
    """Installing a dependency failed; the message says why and what to do."""


class DepsCancelled(DepsError):
    """The cancel flag was raised; the target folder is as it was."""


def module_available(name: str) -> bool:
    """True if `import name` would find the module, without importing it (torch takes seconds)."""
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(names: Sequence[str] = RUNTIME_MODULES) -> list[str]:
    """The runtime modules that cannot be imported, for the preferences to list."""
    return [name for name in names if not module_available(name)]


def missing_message(missing: Sequence[str]) -> str:
    """What to tell a user whose Python lacks the model's modules (PyTorch, most likely)."""
    names = ", ".join(missing)
    return (f"the model cannot run in this Python: {names} {'is' if len(missing) == 1 else 'are'} not installed. "
            "Install PyTorch in Edit > Preferences > Add-ons > MoMask (Install PyTorch), or let the model run "
            "on a server or a local server there (Where the Model Runs)")


def deps_dir(user_dir: Path) -> Path:
    """Where pip puts PyTorch: one folder per Python version, as wheels are built per version."""
    return Path(user_dir) / f"site-packages-py{sys.version_info[0]}{sys.version_info[1]}"


def add_to_sys_path(folder: Path) -> bool:
    """Append `folder` to sys.path (after Blender's own, so Blender's numpy wins). True if added."""
    folder = str(folder)
    if folder in sys.path or not os.path.isdir(folder):
        return False
    sys.path.append(folder)
    importlib.invalidate_caches()
    return True


def torch_variants(platform: str = sys.platform) -> list[tuple[str, str]]:
    """(id, label) pairs the preferences offer: CUDA only where PyTorch publishes CUDA builds."""
    if platform == "darwin":
        return [("default", "CPU / Apple GPU (Metal)")]
    return [("cpu", "CPU only (smaller)"), ("cu126", "NVIDIA CUDA 12.6"), ("cu128", "NVIDIA CUDA 12.8")]


def pip_install_command(
    target: Path,
    variant: str = "cpu",
    *,
    python: str = sys.executable,
    version: str | None = None,
) -> list[str]:
    """The pip command that installs PyTorch into `target` (binary wheels only, no prompts)."""
    if variant != "default" and variant not in TORCH_INDEX:
        raise ValueError(f"unknown PyTorch build {variant!r}; expected one of {sorted(TORCH_INDEX)} or 'default'")
    cmd = [
        python, "-m", "pip", "install", "--target", str(target), "--upgrade",
        "--only-binary=:all:", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
    ]
    if variant in TORCH_INDEX:
        cmd += ["--index-url", TORCH_INDEX[variant]]
    cmd.append(f"torch=={version}" if version else "torch")
    return cmd


def command_line(cmd: list[str]) -> str:
    """A command as the platform's shell wants it typed (cmd.exe quoting on Windows)."""
    return subprocess.list2cmdline(cmd) if os.name == "nt" else shlex.join(cmd)


def manual_instructions(
    target: Path, variant: str = "cpu", *, python: str = sys.executable, version: str | None = None
) -> str:
    """What to tell a user when online access is off: how to allow it, or the command to run."""
    cmd = pip_install_command(target, variant, python=python, version=version)
    line = command_line(cmd)
    return (
        "MoMask needs PyTorch, which is too large to ship inside the extension.\n"
        "Either allow online access (Edit > Preferences > System > Network > Allow Online Access) "
        "and press Install PyTorch, or close Blender and run in a terminal:\n\n"
        f"    {line}\n\n"
        "then start Blender again. On a machine without internet, run the same command elsewhere "
        "with --platform/--python-version, copy the folder to the path above, and restart Blender."
    )


def run_command(
    cmd: Sequence[str],
    *,
    on_line: LineFn | None = None,
    cancel: CancelFlag = None,
    env: dict[str, str] | None = None,
    poll: float = 0.1,
) -> None:
    """Run `cmd`, handing each output line to `on_line`; stop it when cancelled.

    Raises `DepsCancelled` when cancelled and `DepsError` (with the last lines) when it fails.
    """
    run_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "PIP_NO_COLOR": "1"}
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", env=run_env,
        )
    except OSError as exc:
        raise DepsError(f"could not start {cmd[0]}: {exc}") from exc
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    tail: list[str] = []
    finished = False
    while not finished:
        if is_cancelled(cancel):
            _stop(proc)
            reader.join(timeout=5)
            raise DepsCancelled("cancelled")
        try:
            line = lines.get(timeout=poll)
        except queue.Empty:
            continue
        if line is None:
            finished = True
            continue
        tail = (tail + [line])[-_TAIL:]
        if on_line is not None:
            on_line(line)
    code = proc.wait()
    if code != 0:
        raise DepsError(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} failed (exit {code}):\n" + "\n".join(tail))


def _pump(stream, lines: queue.Queue) -> None:
    """Read lines in a thread so the caller can notice a cancel while pip is quiet."""
    with stream:
        for line in stream:
            lines.put(line.rstrip("\r\n"))
    lines.put(None)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ensure_pip(python: str = sys.executable, *, on_line: LineFn | None = None, cancel: CancelFlag = None) -> None:
    """Make `python -m pip` work: Blender's Python ships `ensurepip`, not always pip itself."""
    try:
        run_command([python, "-m", "pip", "--version"], on_line=on_line, cancel=cancel)
        return
    except DepsCancelled:
        raise
    except DepsError:
        pass
    for extra in ([], ["--user"]):  # Blender's own folder may be read-only
        try:
            run_command([python, "-m", "ensurepip", "--upgrade", *extra], on_line=on_line, cancel=cancel)
            return
        except DepsCancelled:
            raise
        except DepsError as exc:
            error = exc
    raise DepsError(f"pip is not available for {python} and ensurepip failed: {error}")


def install_torch(
    target: Path,
    variant: str = "cpu",
    *,
    allow_online: bool,
    python: str = sys.executable,
    version: str | None = None,
    on_line: LineFn | None = None,
    cancel: CancelFlag = None,
) -> Path:
    """pip install PyTorch into `target`, via a staging folder so failure or cancel changes nothing.

    `allow_online` is Blender's `bpy.app.online_access`: without it this raises `DepsError` whose
    message is `manual_instructions(...)`. Returns `target`; call `add_to_sys_path(target)` next.
    """
    target = Path(target)
    if not allow_online:
        raise DepsError(manual_instructions(target, variant, python=python, version=version))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".partial")
    old = target.with_name(target.name + ".old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        ensure_pip(python, on_line=on_line, cancel=cancel)
        started = time.monotonic()
        run_command(pip_install_command(staging, variant, python=python, version=version),
                    on_line=on_line, cancel=cancel)
        if not (staging / "torch").is_dir():
            raise DepsError(f"pip finished but no torch folder appeared in {staging}")
        if target.exists():
            try:
                os.replace(target, old)
            except OSError as exc:
                raise DepsError(f"{target} is in use ({exc}); restart Blender and install again") from exc
        os.replace(staging, target)
        if on_line is not None:
            on_line(f"PyTorch installed into {target} in {time.monotonic() - started:.0f} s")
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

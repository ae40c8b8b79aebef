"""A model server beside Blender: `python -m model_core serve` in its own Python, started and stopped here.

For an artist who wants PyTorch out of Blender: the server runs in another interpreter (a
virtual environment with PyTorch; the checkout's `.venv` by default), on the loopback address
with a fresh random token, and Blender talks to it as to any server. One server at a time; it
stops when Blender quits (atexit) or the add-on is disabled. No bpy here.
"""
from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model_core.serve import spawn
from model_core.serve.client import TOKEN_ENV, Client, ServerError

from ..errors import MomaskError

HOST = spawn.HOST
READY_S = 300.0   # loading the released models from a cold disk can take a while


@dataclass
class LocalServer:
    process: subprocess.Popen
    url: str
    token: str = field(repr=False)
    config: tuple[str, str, str, str]  # python, checkpoints, clip, device: what it was started with
    log_path: Path
    ready: bool = False


_lock = threading.RLock()
_current: LocalServer | None = None
_atexit_registered = False
last_status = ("stopped", "Local server: stopped")  # what the preferences show, refreshed by a timer


def default_python(root: Path | None = None) -> str:
    """The virtual environment beside the add-on's checkout (`.venv`), if there is one."""
    root = root or Path(__file__).resolve().parents[2]
    for candidate in (root / ".venv" / "bin" / "python", root / ".venv" / "Scripts" / "python.exe"):
        if candidate.is_file():
            return str(candidate)
    return ""


def code_folder(cache: Path) -> Path:
    """A folder to put on the server's PYTHONPATH that holds this add-on's `model_core` and nothing else
    from Blender's Python (whose compiled packages need not suit the other interpreter)."""
    import model_core

    package = Path(model_core.__file__).resolve().parent
    if (package.parent / "pyproject.toml").is_file():  # a checkout: its root holds the project's packages
        return package.parent
    target = cache / "server_code"
    marker = target / "model_core" / ".version"
    if not marker.is_file() or marker.read_text() != model_core.__version__:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(package, target / "model_core", ignore=shutil.ignore_patterns("__pycache__", "testing"))
        marker.write_text(model_core.__version__)
    return target


def current() -> LocalServer | None:
    return _current


def start(python: str, checkpoints: str, clip: str, device: str, cache: Path) -> LocalServer:
    """Start the server (stopping one started with other settings); returns at once, see `wait_ready`."""
    global _current, _atexit_registered
    config = (python, checkpoints, clip, device)
    with _lock:
        if _current is not None and _current.process.poll() is None:
            if _current.config == config:
                return _current
            stop()
        if not python:
            raise MomaskError("no Python for the local server: set 'Server Python' in Edit > Preferences > Add-ons "
                              "> MoMask (an interpreter with PyTorch, e.g. a virtual environment's bin/python)")
        if not Path(python).is_file():
            raise MomaskError(f"the local server's Python {python} does not exist: fix 'Server Python' in the "
                              "preferences")
        cache.mkdir(parents=True, exist_ok=True)
        port, token = spawn.free_port(HOST), secrets.token_urlsafe(24)
        log_path = cache / "local_server.log"
        env = dict(os.environ, PYTHONPATH=str(code_folder(cache)), **{TOKEN_ENV: token},
                   PYTHONUNBUFFERED="1")
        command = spawn.serve_command(python, checkpoints, clip, port=port, host=HOST, device=device or "auto")
        with open(log_path, "wb") as log:
            try:
                process = spawn.start(command, env=env, log=log, cwd=tempfile.gettempdir())
            except OSError as err:
                raise MomaskError(f"cannot start the local server with {python}: {err}") from None
        _current = LocalServer(process, f"http://{HOST}:{port}", token, config, log_path)
        if not _atexit_registered:
            atexit.register(stop)
            _atexit_registered = True
        return _current


def wait_ready(server: LocalServer, timeout: float = READY_S, poll: Callable[[], None] | None = None) -> None:
    """Until the server answers its health check; `poll()` is called between tries (raise there to give up)."""
    if server.ready:
        return
    try:
        spawn.wait_healthy(server.process, Client(server.url, server.token), timeout, poll=poll)
    except ServerError as err:
        if server.process.poll() is not None:
            raise MomaskError(f"the local server stopped (exit code {server.process.returncode}): "
                              f"{last_line(server)}") from None
        raise MomaskError(f"local server: {err}; its log is {server.log_path}") from None
    server.ready = True


def stop() -> None:
    """Stop the server, its whole process group, within a few seconds."""
    global _current
    with _lock:
        server, _current = _current, None
    if server is not None:
        spawn.stop(server.process)


def status() -> tuple[str, str]:
    """(state, one line for the preferences): stopped, starting, running or exited."""
    server = _current
    if server is None:
        return "stopped", "Local server: stopped"
    code = server.process.poll()
    if code is not None:
        return "exited", f"Local server stopped (exit code {code}): {last_line(server)}"
    if not server.ready:
        try:
            Client(server.url, server.token).health(timeout=0.3)
            server.ready = True
        except ServerError:
            return "starting", f"Local server: starting (loading the model), pid {server.process.pid}"
    return "running", f"Local server: running on {server.url} (pid {server.process.pid})"


def refresh_status() -> tuple[str, str]:
    """`status()`, kept in `last_status` for drawing (a draw must not wait on the network)."""
    global last_status
    last_status = status()
    return last_status


def last_line(server: LocalServer) -> str:
    try:
        lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][-200:] if lines else "no output"

"""`python -m model_core serve` as a child process: started in a process group of its own, waited for
until it answers its health check, and stopped together with everything it started (Ray, threads).

The add-on's local server, the serving benchmark and the tests start servers this way. Standard
library only (with `client`), so the process that starts a server needs no PyTorch.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from .client import Client, ServerError

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve_command(python: str, checkpoints, clip, *, port: int, host: str = HOST, device: str = "auto",
                  extra: Sequence[str] = ()) -> list[str]:
    """The command line of a server on `host:port` (`extra`: more `serve` flags, e.g. --max-batch)."""
    return [python, "-m", "model_core", "serve", "--checkpoints", str(checkpoints), "--clip", str(clip),
            "--host", host, "--port", str(port), "--device", device, *extra]


def start(command: Sequence[str], *, env: dict[str, str] | None = None, log: IO[bytes] | None = None,
          cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start `command` in a process group of its own, so that `stop` ends whatever it starts too;
    its output (both streams) goes to `log`. An OSError (no such Python) is the caller's to word."""
    return subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT if log is not None else None,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd, **_own_group())


def wait_healthy(process: subprocess.Popen, client: Client, timeout: float, *,
                 poll: Callable[[], None] | None = None, every: float = 0.25,
                 health_timeout: float = 2.0) -> dict[str, Any]:
    """The server's health answer once it gives one. A ServerError when the process exits first, when
    it refuses the token (waiting will not change that), or when it has not answered within `timeout`
    seconds; `poll()` is called between tries (raise there to give up)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerError(f"the server stopped (exit code {process.returncode}) before it answered")
        try:
            return client.health(timeout=health_timeout)
        except ServerError as err:
            if err.status == 401:
                raise
            if time.monotonic() > deadline:
                raise ServerError(f"the server did not answer within {timeout:g} s") from None
        if poll is not None:
            poll()
        time.sleep(every)


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """End the server's whole process group: asked first (SIGTERM; CTRL_BREAK on Windows), killed when it
    is still there after `timeout` seconds."""
    if process.poll() is not None:
        return
    windows = sys.platform == "win32"
    _signal(process, signal.CTRL_BREAK_EVENT if windows else signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGTERM if windows else signal.SIGKILL)
        process.wait(timeout)


def _own_group() -> dict[str, Any]:
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _signal(process: subprocess.Popen, sig: int) -> None:
    try:
        if sys.platform == "win32":
            process.send_signal(sig)
        else:
            os.killpg(process.pid, sig)
    except OSError:  # already gone (ProcessLookupError), or not ours to signal
        pass

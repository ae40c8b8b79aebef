"""Start `python -m model_core serve` on a free loopback port for a test module, and talk to it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: object

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]


def start_server(reference_dir: Path, *extra: str, ready_s: float = 240) -> Server:
    """The server on the reference model, healthy, or a failure that shows its output."""
    port = free_port()
    log = tempfile.TemporaryFile()
    command = [sys.executable, "-m", "model_core", "serve", "--checkpoints", str(reference_dir / "checkpoints"),
               "--clip", str(reference_dir / "clip" / "ViT-B-32.pt"), "--port", str(port), "--device", "cpu", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MOMASK_SERVER_TOKEN=TOKEN)
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{server.output()}")
        if call(server, "GET", "/v1/health", timeout=5)[0] == 200:
            return server
        time.sleep(0.5)
    stop_server(server)
    raise AssertionError(f"the server was not healthy within {ready_s} s:\n{server.output()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    server.log.close()


def call(server: Server, method: str, path: str, body=None, *, token: str | None = TOKEN, raw: bytes | None = None,
         timeout: float = 120, headers: dict | None = None) -> tuple[int, dict | list | str]:
    """(status, JSON answer or text); status 0 when nothing answered."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, payload = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        return 0, str(err)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")

"""Start `python -m model_core serve` on a free loopback port for a test module, and talk to it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from model_core.serve import spawn
from model_core.serve.client import Client, ServerError
from tests.conftest import ROOT

TOKEN = "test-token-0123456789"


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
    port = spawn.free_port()
    log = tempfile.TemporaryFile()
    command = spawn.serve_command(sys.executable, reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt",
                                  port=port, device="cpu", extra=extra)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MOMASK_SERVER_TOKEN=TOKEN)
    server = Server(f"http://{spawn.HOST}:{port}", spawn.start(command, env=env, log=log, cwd=ROOT), log)
    try:
        spawn.wait_healthy(server.process, Client(server.url, TOKEN), ready_s, health_timeout=5)
    except ServerError as err:
        output = server.output()
        stop_server(server)
        raise AssertionError(f"{err}:\n{output}") from None
    return server


def stop_server(server: Server) -> None:
    spawn.stop(server.process, timeout=60)
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

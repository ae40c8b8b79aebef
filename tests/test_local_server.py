"""The add-on's local server process (no Blender needed): a failed start is a clear status line."""
from __future__ import annotations

import signal
import sys

import pytest

from momask_blender.errors import MomaskError
from momask_blender.setup import local_server


def test_a_server_that_cannot_load_says_why_and_stopping_is_clean(tmp_path):
    server = local_server.start(sys.executable, str(tmp_path / "no-checkpoints"), str(tmp_path / "no.pt"), "cpu",
                                tmp_path / "cache")
    try:
        with pytest.raises(MomaskError, match="checkpoint folder not found"):
            local_server.wait_ready(server, timeout=120)
        state, line = local_server.status()
        assert state == "exited" and "exit code 2" in line and "no-checkpoints" in line
    finally:
        local_server.stop()
    assert local_server.current() is None and local_server.status()[0] == "stopped"


def test_start_refuses_a_missing_interpreter(tmp_path):
    with pytest.raises(MomaskError, match="Server Python"):
        local_server.start("", "c", "k", "cpu", tmp_path)
    with pytest.raises(MomaskError, match="does not exist"):
        local_server.start(str(tmp_path / "python"), "c", "k", "cpu", tmp_path)
    assert local_server.current() is None


def test_stop_ends_a_running_server(tmp_path):
    server = local_server.start(sys.executable, str(tmp_path), str(tmp_path / "no.pt"), "cpu", tmp_path / "cache")
    local_server.stop()
    # ended by the polite signal (or on its own), not killed after stop() gave up waiting
    assert server.process.poll() is not None and server.process.returncode != -signal.SIGKILL
    assert local_server.current() is None

"""How PyTorch's threads wait is in the environment before torch is first imported, at every door:
the model core's command lines and server, the Blender command lines, and the add-on's register()."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from model_core import threads
from tests.conftest import ROOT

VARIABLES = threads.USER_VARIABLES


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


REPORT = ("import os, sys; print('torch' in sys.modules, "
          "[os.environ.get(n) for n in ('GOMP_SPINCOUNT', 'KMP_BLOCKTIME', 'OMP_WAIT_POLICY')])")


@pytest.mark.parametrize("module", ["model_core", "model_core.cli", "momask_blender.bake", "momask_blender.demo"])
def test_command_lines_set_the_policy_before_torch_loads(module):
    out = _python(f"import {module}\n{REPORT}")
    expected = [threads.DEFAULT_POLICY["GOMP_SPINCOUNT"], threads.DEFAULT_POLICY["KMP_BLOCKTIME"], None]
    assert out.strip() == f"False {expected}"


def test_the_users_own_policy_is_kept():
    out = _python(f"import model_core\n{REPORT}\nfrom model_core import threads; print(threads.status())",
                  OMP_WAIT_POLICY="PASSIVE")
    assert out.splitlines()[0] == "False [None, None, 'PASSIVE']"
    assert "OMP_WAIT_POLICY=PASSIVE" in out.splitlines()[1]


def test_the_add_on_sets_it_when_it_is_enabled():
    """register() in Blender: before any add-on code imports torch (the worker does it lazily)."""
    out = _python("import bpy, momask_blender\nprint(momask_blender.thread_policy())\n" + REPORT)
    verdict, state = out.strip().splitlines()[-2:]
    assert verdict == "applied" and state.startswith("False ['")


def test_torch_loaded_first_is_reported_not_hidden():
    """Another add-on imported torch first: OpenMP has read its settings; the add-on says so and what to do."""
    out = _python("import torch, bpy, momask_blender\nprint(momask_blender.thread_policy())\n" + REPORT)
    lines = out.strip().splitlines()
    assert lines[-2] == "too late" and lines[-1] == "True [None, None, None]"
    assert any("Set Threads to 1" in line and line.startswith("MoMask: ") for line in lines), out


def test_set_default_policy_decides_from_the_environment():
    env: dict[str, str] = {}
    assert threads.set_default_policy(env, torch_loaded=False) == threads.APPLIED
    assert env == threads.DEFAULT_POLICY
    assert threads.set_default_policy(env, torch_loaded=True) == threads.APPLIED  # inherited from a parent: ours
    assert threads.set_default_policy({}, torch_loaded=True) == threads.TOO_LATE
    user = {"GOMP_SPINCOUNT": "0"}
    assert threads.set_default_policy(user, torch_loaded=False) == threads.USER and user == {"GOMP_SPINCOUNT": "0"}


def test_servers_leave_the_wait_policy_to_model_core(reference_dir):
    """A server loading its model, and Ray's replicas, put no policy of their own in the environment: one
    would override the default in the server (and read as the user's choice in a replica)."""
    files = f"{str(reference_dir / 'checkpoints')!r}, {str(reference_dir / 'clip' / 'ViT-B-32.pt')!r}"
    out = _python(
        "import os\nfrom model_core import threads\n"
        "from model_core.serve.options import ServeOptions, load_engine\n"
        f"load_engine(ServeOptions({files}, 'cpu', None, 1))\n"
        + REPORT + "\nprint(threads.applied_at_import())\n"
        "from model_core.serve.ray_app import replica_environment\n"
        "print(sorted(replica_environment().get('env_vars', {})))\n")
    lines = out.strip().splitlines()
    expected = [threads.DEFAULT_POLICY["GOMP_SPINCOUNT"], threads.DEFAULT_POLICY["KMP_BLOCKTIME"], None]
    assert lines[-3:] == [f"True {expected}", "applied", "[]"], out

"""How PyTorch's CPU threads wait: set before torch is first imported, so a busy machine is no cliff.

PyTorch's CPU builds run their thread pool on OpenMP (GNU libgomp on Linux). By default an idle
worker thread spins for a while before it sleeps. On an idle machine that saves a wake-up per
parallel region; on a machine where another program keeps the cores busy (a render, a physics
bake, a browser) the spinning threads burn the time slices the working thread needs, and a
generation that takes half a second idle took up to 35 times as long (bench/load.py measures it).

OpenMP reads its wait policy once, when the library loads with `import torch`; nothing can change
it afterwards. So the model core sets its default in the environment at its own import
(`model_core/__init__`), before any of its modules imports torch, unless the user chose a policy
(`OMP_WAIT_POLICY`, `GOMP_SPINCOUNT`, `KMP_BLOCKTIME`). Child processes (Ray workers, subprocesses)
inherit it. Where torch was imported before (another Blender add-on, a script that imports torch
first), `status()` says so and the thread count is the lever left.
"""
from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# The chosen default (see bench/load.py for the measurements it rests on): a bounded spin. GNU
# OpenMP counts spins (GOMP_SPINCOUNT); LLVM's and Intel's OpenMP (macOS, Windows builds) count
# milliseconds (KMP_BLOCKTIME); each library ignores the other's variable.
DEFAULT_POLICY = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

APPLIED, USER, TOO_LATE = "applied", "user", "too late"


def set_default_policy(env: MutableMapping[str, str] | None = None, *, torch_loaded: bool | None = None) -> str:
    """Put the default wait policy into `env` (os.environ) unless the user set one or torch is loaded.

    Returns APPLIED, USER (a policy variable was already set: the user's choice is kept) or
    TOO_LATE (torch was imported first: OpenMP has read its settings, changing them does nothing).
    """
    env = os.environ if env is None else env
    if any(env.get(name) for name in USER_VARIABLES) and not _ours(env):
        return USER
    if torch_loaded is None:
        torch_loaded = "torch" in sys.modules
    if torch_loaded and not _ours(env):
        return TOO_LATE
    for name, value in DEFAULT_POLICY.items():
        env.setdefault(name, value)
    return APPLIED


def _ours(env: MutableMapping[str, str]) -> bool:
    return all(env.get(name) == value for name, value in DEFAULT_POLICY.items())


_AT_IMPORT: str | None = None


def apply_at_import() -> str:
    """Called once by model_core/__init__: remember what happened for `status()`."""
    global _AT_IMPORT
    if _AT_IMPORT is None:
        _AT_IMPORT = set_default_policy()
    return _AT_IMPORT


def applied_at_import() -> str | None:
    """What the import-time call did: APPLIED, USER, TOO_LATE (None before model_core was imported)."""
    return _AT_IMPORT


def status() -> str:
    """A sentence for preferences and logs: which wait policy PyTorch runs with, and what to do."""
    if _AT_IMPORT == TOO_LATE:
        return ("PyTorch was loaded before MoMask could set how its threads wait (another add-on or script "
                "imported it first): under background load generation may slow down a lot. Set Threads to 1, "
                "or start Blender with GOMP_SPINCOUNT=10000 (or OMP_WAIT_POLICY=PASSIVE) in the environment.")
    if _AT_IMPORT == USER:
        chosen = ", ".join(f"{n}={os.environ[n]}" for n in USER_VARIABLES if os.environ.get(n))
        return f"PyTorch threads wait as the environment says ({chosen})."
    return "PyTorch threads spin briefly, then sleep: fast when idle, no slowdown when other programs are busy."

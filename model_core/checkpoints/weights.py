"""Loading checkpoint files as untrusted input: tensors only, every key and shape checked."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelError, first_line


def read_state(path: Path, what: str = "checkpoint",
               advice: str = "use the released file, or ask whoever made this one") -> Any:
    """What `torch.save` wrote to `path`, read as untrusted input; any failure a ModelError naming the file.

    `weights_only=True` refuses any pickle that would build objects other than tensors and
    plain containers; `mmap` lets the weights stay in the page cache instead of being copied,
    which is most of the load time of the released files (it needs the zip format: an older
    file in the legacy format is read whole). `what` names the file in messages, `advice`
    says what to use instead of a refused one.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        raise ModelError(f"{path}: refused, not loaded: it holds {refused_content(err)}, which a {what} has no "
                         f"reason to contain; {advice}") from None
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 (a damaged file fails in many ways; all of them mean "unreadable")
        raise ModelError(f"{path}: not a readable {what}, truncated or corrupted ({first_line(err)})") from None


def load_weights(path: Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The state dict stored under the first of `keys` present in the checkpoint at `path`."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"missing checkpoint: expected {path}")
    checkpoint = read_state(path)
    if not isinstance(checkpoint, dict):
        raise ModelError(f"{path}: expected a dict of state dicts, found {type(checkpoint).__name__}")
    for key in keys:
        if key in checkpoint:
            state = checkpoint[key]
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise ModelError(f"{path}: entry {key!r} is not a state dict of tensors")
            return state
    raise ModelError(f"{path}: none of the expected entries {list(keys)} found; it has {sorted(checkpoint)}")


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def refused_content(err: Exception) -> str:
    """What the refused pickle asked for, in our words: torch's own message advises loading the file
    unsafely (`weights_only=False`), the one thing a user must not do with a file that was refused."""
    found = _GLOBAL.search(str(err))
    return f"Python code or objects ({found.group(1)})" if found else "Python code or objects"


def indexed_count(state: dict[str, torch.Tensor], pattern: str) -> int:
    """How many distinct indices `pattern`'s group matches among the keys (e.g. layers of an encoder)."""
    regex = re.compile(pattern)
    return len({m.group(1) for key in state if (m := regex.match(key))})


def check_option(path: Path, name: str, value: int, found: int, what: str) -> None:
    """An opt.txt value against what the weights file holds, before anything is built from it."""
    if value != found:
        raise ModelError(f"{path}: the weights hold {found} {what}, expected {value} as opt.txt's {name} says: "
                         "the opt.txt does not belong to these weights")


def assign_state(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load `state` into `module` with strict semantics, naming the file, key and shapes on error.

    Tensors are assigned (not copied) so memory-mapped weights stay shared with the file.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        raise ModelError(f"{path}: the weights do not fit this model: {'; '.join(parts)}")
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise ModelError(
                f"{path}: tensor {key!r} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if not got.is_floating_point() and want.is_floating_point():
            raise ModelError(f"{path}: tensor {key!r} has dtype {got.dtype}, expected floating point")
    converted = {k: v.to(expected[k].dtype) if v.dtype != expected[k].dtype else v for k, v in state.items()}
    module.load_state_dict(converted, strict=True, assign=True)

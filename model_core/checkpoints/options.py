"""Reading the official `opt.txt` files: `key: value` lines between two banner lines."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ModelError

_BANNERS = ("------------ Options -------------", "-------------- End ----------------")
_FLOAT = re.compile(r"^[-+]?[0-9]+\.[0-9]+$")
_INT = re.compile(r"^[-+]?[0-9]+$")


def _parse_value(text: str) -> bool | int | float | str:
    """Types as the official reader assigns them: booleans, then decimals, then integers."""
    if text in ("True", "False"):
        return text == "True"
    if _FLOAT.match(text):
        return float(text)
    if _INT.match(text):
        return int(text)
    return text


def read_options(path: Path) -> dict[str, bool | int | float | str]:
    """Parse one opt.txt; a missing file or a malformed line is a ModelError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"missing options file: expected {path}")
    options: dict[str, bool | int | float | str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped in _BANNERS:
            continue
        key, sep, value = line.partition(": ")
        if not sep or not key.strip():
            raise ModelError(f"{path}: line {number} is not 'key: value': {line!r}")
        options[key.strip()] = _parse_value(value.strip())
    return options


def require(options: dict, key: str, kind: type, path: Path):
    """One typed option, or a ModelError naming the file and the key."""
    if key not in options:
        raise ModelError(f"{path}: option {key!r} is missing")
    value = options[key]
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelError(f"{path}: option {key!r} should be {kind.__name__}, found {value!r}")
    return value

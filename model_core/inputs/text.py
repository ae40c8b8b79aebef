"""Text files from users (prompt lists, prompt sequences, constraints files): read whole as UTF-8.

Whatever goes wrong (no such file, a folder, no permission, bytes that are not UTF-8) is one
ModelError naming the file and why, never a traceback.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError


def read_text(path, what: str = "text file") -> str:
    """The file's text; `what` names it in messages ("sequence file", "constraints file")."""
    if path is None or not str(path).strip():
        raise ModelError(f"no {what} given: name the file to read")
    path = Path(path).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelError(f"the {what} {path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
                         f"{err.start}): save it as UTF-8") from None
    except OSError as err:
        raise ModelError(f"cannot read the {what} {path}: {err.strerror or type(err).__name__}") from None

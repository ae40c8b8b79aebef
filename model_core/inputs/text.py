"""Text files from users (prompt lists, prompt sequences, constraints files): read whole as UTF-8.

Whatever goes wrong (no such file, a folder, no permission, bytes that are not UTF-8) is one
ModelError naming the file and why, never a traceback.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError


def read_text(path, what: str = "text file") -> str:
    """The file's text; `what` names it in messages ("sequence file", "constraints file")."""
    path = Path(path).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelError(f"cannot read the {what} {path}: it is not UTF-8 text ({err.reason} at byte "
                         f"{err.start})") from None
    except OSError as err:
        raise ModelError(f"cannot read the {what} {path}: {err.strerror or type(err).__name__}") from None

"""Writing .blend files from the command lines: the target checked before the work, Blender's own
save (it writes `<file>@` and renames it, so a failure leaves the old file), and a one-line error."""
from __future__ import annotations

from pathlib import Path

import bpy

from ..errors import MomaskError, model_checks


def check_output(path, what: str) -> Path:
    """The absolute path to write, refused unless new or a regular file we may replace (not a folder,
    device, pipe or symbolic link) in a folder that exists or can be made (model_core.inputs.paths).
    Nothing is created: the writer makes the folder when it writes."""
    from model_core.inputs.paths import check_output_file

    with model_checks():
        return check_output_file(path, what)


def save_blend(path, what: str = "output file") -> Path:
    """Save the open file as `path` (checked again: the work may have taken minutes)."""
    from model_core.inputs.paths import make_folders

    out = check_output(path, what)
    with model_checks():
        make_folders(out.parent, what)
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise MomaskError(f"cannot save the {what} {out}: {(lines[-1] if lines else 'unknown error')[:200]}") \
            from None
    return out

"""Files we write: checked before any work, written whole or not at all.

Every output goes to a temporary file beside the target and is renamed over it only once it is
complete, so a full disk, a crash or a cancel leaves the previous file (or none) and no partial
one. A target that exists must be a regular file: a folder, a device (`/dev/full`), a pipe or a
symbolic link is refused with a message rather than replaced by our file.
Text files we are given are read by `inputs.text.read_text`.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ModelError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import: new files get the permissions an ordinary open() gives them
TEMPORARY_PREFIX, TEMPORARY_SUFFIX = ".", ".part"  # `.name.XXXX.part` beside the target while it is written


def check_output_file(path, what: str = "output file") -> Path:
    """The absolute path to write `what` to, or a ModelError saying why it cannot be written there.

    Checks the name, what is there now (nothing, or a regular file we may replace) and the folder
    (it exists, or the nearest folder that does is writable so it can be made). Nothing is created:
    a check that passes before a long job leaves no trace when the job then fails.
    """
    if path is None or not str(path).strip():
        raise ModelError(f"no {what} given: name the file to write")
    target = Path(os.path.abspath(Path(path).expanduser()))
    existing = _nearest_folder(target.parent, what)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise ModelError(f"cannot write the {what} {target}: {_reason(err)}") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise ModelError(f"the {what} {target} is a symbolic link: refusing to replace it; "
                             "give the path of the file it points to, or remove the link")
        if stat.S_ISDIR(info.st_mode):
            raise ModelError(f"the {what} {target} is a folder: give a file name inside it")
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"the {what} {target} exists and is not a regular file (a device, pipe or socket): "
                             "refusing to write over it")
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise ModelError(f"the {what} {target} is read-only: refusing to replace it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ModelError(f"cannot write the {what} {target}: the folder {existing} is not writable")
    return target


def _nearest_folder(folder: Path, what: str) -> Path:
    """The nearest existing folder at or above `folder`; a file the path runs through is refused."""
    for parent in [folder, *folder.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ModelError(f"cannot write the {what} under {folder}: {parent} is a file, not a folder")
            return parent
    return Path(folder.anchor)


def make_folders(folder: Path, what: str = "output file") -> list[Path]:
    """Make `folder` and its missing parents; returns those made, deepest last (to undo a failure)."""
    made = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"cannot make the folder {folder} for the {what}: {_reason(err)}") from None
    return made


@contextlib.contextmanager
def replacing(path, what: str = "output file") -> Iterator[BinaryIO]:
    """An open binary file whose bytes replace `path` when the block ends without an error.

    The bytes go to a temporary file in the same folder (so the rename is atomic), flushed to disk
    before the rename; on any error the temporary file is removed and `path` is left as it was.
    OSErrors (a full disk, a vanished folder) become a ModelError naming the file.
    """
    target = check_output_file(path, what)
    made = make_folders(target.parent, what)
    done, temporary = False, None
    try:
        try:
            handle, temporary = tempfile.mkstemp(prefix=f"{TEMPORARY_PREFIX}{target.name[:80]}.",
                                                 suffix=TEMPORARY_SUFFIX, dir=target.parent)
        except OSError as err:
            raise ModelError(f"cannot write the {what} {target}: {_reason(err)}") from None
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode) if target.exists() else 0o666 & ~_UMASK)
        os.replace(temporary, target)
        done = True
    except OSError as err:
        raise ModelError(f"cannot write the {what} {target}: {_reason(err)}; "
                         f"{'the previous file is kept' if target.exists() else 'nothing was written'}") from None
    finally:
        if not done:
            with contextlib.suppress(OSError, TypeError):
                os.unlink(temporary)
            for folder in reversed(made):  # the folders made for this file, if still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()


def write_file(path, write: Callable[[BinaryIO], None], what: str = "output file") -> Path:
    """Call `write(stream)` and put the result at `path` atomically; returns the absolute path written."""
    target = check_output_file(path, what)
    with replacing(target, what) as stream:
        write(stream)
    return target


def write_bytes(path, data: bytes, what: str = "output file") -> Path:
    return write_file(path, lambda stream: stream.write(data), what)


def write_text(path, text: str, what: str = "output file", encoding: str = "utf-8") -> Path:
    return write_file(path, lambda stream: stream.write(text.encode(encoding)), what)


def remove_leftovers(folder) -> list[Path]:
    """Remove the temporary files a killed process left in `folder` while writing (`replacing` removes its
    own on any error it sees); returns them. Only regular files named as `replacing` names them go."""
    removed = []
    for leftover in Path(folder).glob(f"{TEMPORARY_PREFIX}*{TEMPORARY_SUFFIX}"):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(leftover).st_mode):
                leftover.unlink()
                removed.append(leftover)
    return removed


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def write_npz(path, arrays: dict, what: str = "output file") -> Path:
    """What `np.savez` writes, to exactly `path` (no `.npz` appended), atomically.

    The archive is closed even when a write fails (np.savez leaves it to the garbage collector,
    which then prints a traceback about a closed file).
    """
    import zipfile

    import numpy as np

    def write(stream: BinaryIO) -> None:
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, value in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)

    return write_file(path, write, what)

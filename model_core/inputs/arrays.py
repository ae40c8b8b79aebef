"""Motion arrays and the .npy files they arrive in: checked before anything is computed from them.

An .npy header may declare any shape: it is checked against the file's size before a byte is read,
so a 100-byte file cannot ask for terabytes. Arrays must hold real numbers (not text, booleans or
complex values), be finite and of plausible size: joints a million metres away or a skeleton
whose joints all sit on one point would bake without a word into keys of 1e8 or a scale of 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, first_line
from .timing import MAX_MOTION_FRAMES

MAX_NPY_BYTES = 2 << 30          # 2 GiB: ten minutes of 263-d features are 60 MB
MAX_COORDINATE = 1e6             # metres (or centimetres, millimetres): beyond any motion capture volume
MIN_BODY_SIZE = 1e-3             # a skeleton smaller than 1 mm (in any unit) has no usable proportions


def read_npy(path, what: str = "array file", max_bytes: int = MAX_NPY_BYTES) -> np.ndarray:
    """The array in an .npy file, read without pickles; its header is checked against the file first."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            size = path.stat().st_size
            if size == 0:
                raise ModelError(f"{what} {path} is empty (0 bytes)")
            shape, dtype = _header(stream)
            if dtype.hasobject:
                raise ModelError(f"{what} {path} holds Python objects ({dtype}), not numbers")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > max_bytes:
                raise ModelError(f"{what} {path} declares {declared:,} bytes of data, more than the "
                                 f"{max_bytes:,} allowed")
            if declared > size - stream.tell():
                raise ModelError(f"{what} {path} is truncated: its header declares {declared:,} bytes of data, "
                                 f"the file holds {size - stream.tell():,}")
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ModelError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ModelError(f"{what} {path} is a folder, not a file") from None
    except ModelError:
        raise
    except (OSError, ValueError, EOFError, TypeError, SyntaxError) as err:
        raise ModelError(f"{what} {path} is not a readable .npy file ({first_line(err)})") from None


def _header(stream) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an .npy header declares (NumPy's public readers for formats 1 and 2)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, dtype


def real_numbers(array, what: str) -> np.ndarray:
    """`array` as float64, refusing text, booleans, complex values and objects by their dtype."""
    a = np.asarray(array)
    if a.dtype.kind not in "fiu":
        kinds = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects"}
        raise ModelError(f"{what} holds {kinds.get(a.dtype.kind, a.dtype.name)} (dtype {a.dtype}), "
                         "expected real numbers")
    return a.astype(np.float64, copy=False)


def finite_values(array: np.ndarray, what: str, limit: float = MAX_COORDINATE) -> np.ndarray:
    """Refuse NaN, inf and magnitudes past `limit`, naming the first offending index."""
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelError(f"{what} contains {int(bad.sum())} NaN/inf values (first at index {where})")
    if array.size and float(np.abs(array).max()) > limit:
        where = tuple(int(i) for i in np.unravel_index(int(np.abs(array).argmax()), array.shape))
        raise ModelError(f"{what} holds a value of {float(array[where]):.3g} at index {where}, beyond the "
                         f"{limit:g} a motion can have")
    return array


def check_joints(joints, what: str = "joints", joints_num: int = 22, min_frames: int = 2) -> np.ndarray:
    """Joint positions (frames, joints_num, 3) as float64: real, finite, plausible, with a body.

    A body is a skeleton whose joints are not all on one point: its size (the largest distance
    from the first joint, median over frames) is at least MIN_BODY_SIZE.
    """
    j = real_numbers(joints, what)
    if j.ndim != 3 or j.shape[1:] != (joints_num, 3):
        raise ModelError(f"{what}: expected joint positions of shape (frames, {joints_num}, 3), got {j.shape}")
    if not min_frames <= len(j) <= MAX_MOTION_FRAMES:
        raise ModelError(f"{what}: needs {min_frames} to {MAX_MOTION_FRAMES:,} frames, got {len(j):,}")
    finite_values(j, what)
    size = float(np.median(np.linalg.norm(j - j[:, :1], axis=-1).max(axis=1)))
    if size < MIN_BODY_SIZE:
        raise ModelError(f"{what}: the joints all sit on one point (the skeleton is {size:.3g} across): "
                         "the bone offsets are zero or the file holds no skeleton")
    return j


def check_features(features, width: int, what: str = "features") -> np.ndarray:
    """Motion features (frames, width) as float64: real, finite, plausible, at most MAX_MOTION_FRAMES."""
    f = real_numbers(features, what)
    if f.ndim != 2 or f.shape[1] != width:
        raise ModelError(f"{what}: expected (frames, {width}), got {f.shape}")
    if len(f) > MAX_MOTION_FRAMES:
        raise ModelError(f"{what}: {len(f):,} frames, more than the {MAX_MOTION_FRAMES:,} a motion may have")
    return finite_values(f, what)


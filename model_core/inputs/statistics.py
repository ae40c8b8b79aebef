"""The feature mean and standard deviation (`meta/mean.npy`, `meta/std.npy`) that de-normalise the
model's output: every generated joint is `features * std + mean`, so they are checked like weights.

Real HumanML3D and KIT statistics lie well inside these bounds; a std of 1e38 gave joints of 2.7e38
and a text or complex `mean.npy` was accepted before.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .arrays import read_npy, real_numbers

MAX_STATISTIC = 1e5   # |mean| and std, in the features' units (metres, or millimetres for KIT)
MIN_STD = 1e-12       # a std of 0 divides by zero when a motion is encoded


def read_statistic(path: Path, width: int) -> np.ndarray:
    """One of mean.npy / std.npy as float32 of shape (width,), real, finite and within bounds."""
    path = Path(path)
    kind = "std" if path.stem == "std" else "mean"
    value = real_numbers(read_npy(path, f"feature {kind} file", max_bytes=1 << 20), f"{path}")
    if value.shape != (width,):
        raise ModelError(f"{path}: expected shape ({width},), found {value.shape}")
    bad = ~np.isfinite(value)
    if bad.any():
        raise ModelError(f"{path}: holds {int(bad.sum())} NaN or infinite values (first at {int(np.argmax(bad))})")
    if kind == "std" and (value < MIN_STD).any():
        raise ModelError(f"{path}: holds non-positive values (first at {int(np.argmax(value < MIN_STD))}): "
                         "a standard deviation is more than 0")
    if float(np.abs(value).max()) > MAX_STATISTIC:
        at = int(np.abs(value).argmax())
        raise ModelError(f"{path}: value {value[at]:.3g} at {at} is beyond the {MAX_STATISTIC:g} a feature "
                         f"{kind} can have: the file is corrupted")
    return value.astype(np.float32)

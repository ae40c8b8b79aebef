"""A batch job's list and its files: `seconds<TAB>prompt[<TAB>seed]` lines in, one .npz (and .bvh) out each.

Each item's file name holds a hash of everything that makes its motion (prompt, length, seed,
settings), so a rerun skips what is already made and remakes what changed. Files appear whole
or not at all (`model_core.inputs.paths`: written under a temporary name in the same folder,
then renamed).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..generation.requests import seconds_to_frames
from ..settings import MAX_LONG_SECONDS, MIN_SECONDS, GenerationSettings

AUTO = "auto"  # seconds column: let the length estimator choose


@dataclass(frozen=True)
class Item:
    line: int                 # 1-based line in the list
    prompt: str
    seconds: float | None     # None: the length estimator
    seed: int

    def name(self, settings: GenerationSettings) -> str:
        """`<words of the prompt>-<hash>`: readable, and different whenever the motion would be."""
        key = json.dumps([self.prompt, self.seconds, self.seed, asdict(settings)], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        words = re.sub(r"[^a-z0-9]+", "_", self.prompt.lower()).strip("_")[:48].rstrip("_") or "motion"
        return f"{words}-{digest}"

    @property
    def frames(self) -> int | None:
        return None if self.seconds is None else seconds_to_frames(self.seconds)


@dataclass(frozen=True)
class BadLine:
    line: int
    text: str
    reason: str


def parse_list(text: str, default_seed: int = 0) -> tuple[list[Item], list[BadLine]]:
    """Items, and the lines that are not items (each with why); blank lines and # comments skipped."""
    items, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        reason = None
        if len(parts) not in (2, 3) or not parts[1].strip():
            reason = "expected seconds<TAB>prompt[<TAB>seed]"
        else:
            seconds, reason = _seconds(parts[0])
            seed = default_seed
            if reason is None and len(parts) == 3:
                try:
                    seed = int(parts[2])
                except ValueError:
                    reason = f"seed {parts[2]!r} is not a whole number"
        if reason is None and seed < 0:
            reason = f"seed {seed} is negative"
        if reason is not None:
            bad.append(BadLine(number, line, reason))
        else:
            items.append(Item(number, parts[1].strip(), seconds, seed))
    return items, bad


def _seconds(text: str) -> tuple[float | None, str | None]:
    if text.strip().lower() == AUTO:
        return None, None
    try:
        value = float(text)
    except ValueError:
        return None, f"seconds {text!r} is not a number (or '{AUTO}')"
    if not math.isfinite(value) or value < MIN_SECONDS or value > MAX_LONG_SECONDS:
        return None, f"seconds {text!r} is outside {MIN_SECONDS:g}-{MAX_LONG_SECONDS:g}"
    return value, None


def npz_arrays(item: Item, joints: np.ndarray, features: np.ndarray | None, fps: int,
               settings: GenerationSettings) -> dict[str, np.ndarray]:
    """The item's .npz: joints (frames x 22 x 3), features, fps, and what made it."""
    arrays = {"joints": np.asarray(joints, np.float32), "fps": np.asarray(fps), "prompt": np.asarray(item.prompt),
              "seed": np.asarray(item.seed), "seconds": np.asarray(np.nan if item.seconds is None else item.seconds),
              "settings": np.asarray(json.dumps(asdict(settings)))}
    if features is not None:
        arrays["features"] = np.asarray(features, np.float32)
    return arrays

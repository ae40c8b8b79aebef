"""Where the model files are: the user's settings, the environment, beside the checkout.

One search for every caller (the demo, the add-on's preferences and model cache, the command
lines). A checkpoint folder counts when the loader's own search (`model_core.checkpoints.layout.
find_models`) finds a complete set of models in it, so "found" here means "loads" there.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model_core.checkpoints.layout import DATASETS, find_models
from model_core.errors import ModelError

from ..errors import MomaskError

CLIP_NAME = "ViT-B-32.pt"
WHERE = "Edit > Preferences > Add-ons > MoMask"


@dataclass
class Weights:
    """Where the model files are and where they were found."""

    checkpoints: Path
    clip: Path
    origin: str                    # preferences, MOMASK_CHECKPOINTS, beside the checkout, reference, random, ...
    random: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def meaningful(self) -> bool:
        return not self.random and self.origin != "reference"


def checkpoints_ok(path: Path) -> bool:
    """A folder in the official layout (holding t2m/ or kit/, or one of them) that the loader accepts."""
    try:
        find_models(Path(path))
    except (ModelError, OSError):
        return False
    return True


def clip_candidates(checkpoints: Path, env: Mapping[str, str], home: Path | None) -> list[Path]:
    """Where CLIP may be for a checkpoint folder: MOMASK_CLIP, beside it, in ~/.cache/clip (clip.load's)."""
    base = checkpoints.parent if checkpoints.name not in DATASETS else checkpoints.parent.parent
    out = [Path(env["MOMASK_CLIP"]).expanduser()] if env.get("MOMASK_CLIP") else []
    out += [base / CLIP_NAME, base / "clip" / CLIP_NAME, checkpoints / "clip" / CLIP_NAME]
    if home is not None:
        out.append(home / ".cache" / "clip" / CLIP_NAME)
    return out


def first_file(paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def find_weights(env: Mapping[str, str], checkout: Path, prefs: Sequence[tuple[str, str]] = (),
                 home: Path | None = None, cache: Path | None = None) -> Weights | None:
    """The first usable (checkpoints, CLIP) pair in the documented order, or None.

    `prefs` are (checkpoint folder, CLIP file) pairs from the add-on's preferences and from the
    extension's user folder; `cache` is where the demo downloads the released files to
    (`<cache>/checkpoints`, `<cache>/clip/ViT-B-32.pt`), looked at after the official download
    beside the checkout and before ../shared/reference's test models. A `MOMASK_CHECKPOINTS` (or
    `MOMASK_CLIP`) that is set but wrong is an error, not a reason to fall through to other
    weights: the user asked for those files.
    """
    notes: list[str] = []
    for ckpt, clip in prefs:
        if not ckpt:
            continue
        c, k = Path(ckpt).expanduser(), Path(clip).expanduser() if clip else None
        if checkpoints_ok(c) and k is not None and k.is_file():
            return Weights(c, k, "preferences", notes=notes)
        notes.append(f"the add-on's preferences name {c} / {k or '(no CLIP file)'}, which are not complete: skipped")
    if env.get("MOMASK_CLIP") and not Path(env["MOMASK_CLIP"]).expanduser().is_file():
        raise MomaskError(f"MOMASK_CLIP={env['MOMASK_CLIP']} is not a file: point it at OpenAI's {CLIP_NAME}")
    if env.get("MOMASK_CHECKPOINTS"):
        c = Path(env["MOMASK_CHECKPOINTS"]).expanduser()
        if not checkpoints_ok(c):
            raise MomaskError(f"MOMASK_CHECKPOINTS={c} is not a checkpoint folder in the official layout "
                              "(it should hold t2m/<model folders with opt.txt>)")
        clip = first_file(clip_candidates(c, env, home))
        if clip is None:
            raise MomaskError(f"MOMASK_CHECKPOINTS={c} is set but no {CLIP_NAME} was found: set MOMASK_CLIP")
        return Weights(c, clip, "MOMASK_CHECKPOINTS", notes=notes)
    parent = Path(checkout).resolve().parent
    for c in (parent / "checkpoints", parent / "momask-codes" / "checkpoints"):
        if checkpoints_ok(c):
            clip = first_file(clip_candidates(c, env, home))
            if clip is not None:
                return Weights(c, clip, "beside the checkout", notes=notes)
            notes.append(f"found {c} but no {CLIP_NAME} beside it (or MOMASK_CLIP): skipped")
    if cache is not None and checkpoints_ok(Path(cache) / "checkpoints"):
        clip = first_file(clip_candidates(Path(cache) / "checkpoints", env, home))
        if clip is not None:
            return Weights(Path(cache) / "checkpoints", clip, "downloaded", notes=notes)
    ref = parent / "shared" / "reference"
    clip = first_file([Path(env["MOMASK_CLIP"]).expanduser()] if env.get("MOMASK_CLIP") else []) \
        or first_file([ref / "clip" / CLIP_NAME, ref / "clip" / "ViT-B-32.state_dict.pt"])
    if checkpoints_ok(ref / "checkpoints") and clip is not None:
        return Weights(ref / "checkpoints", clip, "reference", notes=notes)
    return None


def check_paths(checkpoints: str, clip: str) -> tuple[Path, Path]:
    """Both model paths given and present, or a message that says where to set them."""
    if not checkpoints:
        raise MomaskError(f"the MoMask checkpoint folder is not set: set it in {WHERE} (or pass it)")
    if not clip:
        raise MomaskError(f"the CLIP file (ViT-B-32.pt) is not set: set it in {WHERE} (or pass it)")
    ckpt, clip_path = Path(checkpoints).expanduser(), Path(clip).expanduser()
    if not ckpt.is_dir():
        raise MomaskError(f"the checkpoint folder {ckpt} does not exist: fix it in {WHERE}")
    if not clip_path.is_file():
        raise MomaskError(f"the CLIP file {clip_path} does not exist: fix it in {WHERE}")
    return ckpt, clip_path

"""One status line each for the preferences' checkpoint folder and CLIP file (pure, no torch).

Uses the asset table of `assets` (what the model needs) on whatever folder the user points at:
the official `checkpoints` folder (holding `t2m/`), `checkpoints/t2m` itself, or a folder with
other model names (the seeded reference models), found by `assets.discover_release`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import assets


@dataclass(frozen=True)
class Status:
    ok: bool
    text: str                     # the line the preferences show
    missing: tuple[str, ...] = ()  # relative paths of what is missing


def _dataset_dir(folder: Path) -> Path | None:
    if folder.name in ("t2m", "kit"):
        return folder
    for name in ("t2m", "kit"):
        if (folder / name).is_dir():
            return folder / name
    return None


def checkpoints(path: str) -> Status:
    if not path:
        return Status(False, "Not set: choose the folder the official download made (it holds t2m/)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return Status(False, f"Folder not found: {folder}")
    dataset_dir = _dataset_dir(folder)
    if dataset_dir is None:
        return Status(False, "No t2m/ folder inside: choose the official 'checkpoints' folder", ("t2m/",))
    release = assets.discover_release(dataset_dir, dataset_dir.name)
    if release is None:
        return Status(False, f"No MoMask models in {dataset_dir.name}/: expected a t2m_* transformer, "
                             "its rvq_* and tres_* folders with opt.txt", (f"{dataset_dir.name}/t2m_*/opt.txt",))
    prefix = assets.checkpoints_rel(release) + "/"
    statuses = [assets.check_asset(dataset_dir, dataclasses.replace(a, rel=a.rel.removeprefix(prefix)))
                for a in assets.release_assets(release, with_clip=False)]
    missing = tuple(s.asset.rel for s in statuses if s.status == assets.MISSING)
    if missing:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        return Status(False, f"Missing {len(missing)} of {len(statuses)} files: {', '.join(missing[:2])}{more}",
                      missing)
    try:  # the loader's own search must agree (e.g. several transformers need a choice)
        from model_core.checkpoints.layout import find_models
        from model_core.errors import ModelError

        find_models(folder)
    except ModelError as err:
        return Status(False, str(err))
    verified = sum(s.status == assets.VERIFIED for s in statuses)
    extra = f", {verified} verified" if verified else ""
    return Status(True, f"Found: {release.transformer} and its {len(statuses)} files{extra}")


def clip(path: str) -> Status:
    if not path:
        return Status(False, "Not set: choose OpenAI's ViT-B-32.pt")
    file = Path(path).expanduser()
    if file.is_dir():
        return Status(False, f"{file} is a folder: choose the ViT-B-32.pt file inside it")
    asset = assets.Asset(file.name, assets.Kind.CLIP, sha256=assets.CLIP_SHA256)
    status = assets.check_asset(file.parent, asset)
    if status.status == assets.MISSING:
        return Status(False, f"File not found: {file}", (file.name,))
    if status.status == assets.VERIFIED:
        return Status(True, "Found, verified: OpenAI's ViT-B/32")
    return Status(True, f"Found ({file.stat().st_size / 2**20:.0f} MB, not verified)")

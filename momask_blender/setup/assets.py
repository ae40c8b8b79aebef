"""The files MoMask needs on disk, where they live, and whether they are there and intact.

Pure Python (no bpy, no torch): the preferences draw `check_assets(...)`, the installers and the
downloader use the same table, so "what the model needs" is written down once.

Layout under a root folder (the extension's user folder, or any folder a user points at), the
same as the official download script's and ../shared/reference's:

    <root>/checkpoints/t2m/<rvq name>/{opt.txt, model/net_best_fid.tar, meta/mean.npy, meta/std.npy}
    <root>/checkpoints/t2m/<transformer name>/{opt.txt, model/latest.tar}
    <root>/checkpoints/t2m/<residual name>/{opt.txt, model/net_best_fid.tar}
    <root>/checkpoints/t2m/length_estimator/model/finest.tar
    <root>/clip/ViT-B-32.pt
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from model_core.checkpoints.options import read_options
from model_core.errors import ModelError

MISSING, FOUND, VERIFIED = "missing", "found", "verified"

# OpenAI publishes ViT-B/32 under a URL that contains the file's SHA-256.
CLIP_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
CLIP_URL = f"https://openaipublic.azureedge.net/clip/models/{CLIP_SHA256}/ViT-B-32.pt"
# The storage account behind that CDN name: tried when the CDN does not answer (same bytes, same hash).
CLIP_URL_ORIGIN = f"https://openaipublic.blob.core.windows.net/clip/models/{CLIP_SHA256}/ViT-B-32.pt"
CLIP_REL = "clip/ViT-B-32.pt"

# Caps on what a download or an install may bring: an endless stream or a zip bomb fills the disk.
CLIP_MAX_BYTES = 400_000_000       # OpenAI's ViT-B-32.pt is about 354 MB
MODELS_ZIP_MAX_BYTES = 4 << 30     # the released HumanML3D models are about 200 MB of weights
INSTALL_MAX_BYTES = 8 << 30        # everything one install unpacks or copies

# The Google Drive file that the official prepare/download_models.sh fetches for HumanML3D.
HUMANML3D_ZIP_DRIVE_ID = "1vXS7SHJBgWPt59wupQ5UUzhFObrnGkQ0"
HUMANML3D_ZIP_NAME = "humanml3d_models.zip"

_HASH_CHUNK = 1 << 20


class Kind(StrEnum):
    """What a file is for, so the UI can group rows and the installers know their source."""

    OPTIONS = "options"
    WEIGHTS = "weights"
    META = "meta"
    CLIP = "clip"


@dataclass(frozen=True)
class Release:
    """The folder names of one set of checkpoints (names are the official compatibility contract)."""

    dataset: str
    rvq: str
    transformer: str
    residual: str


HUMANML3D = Release(
    dataset="t2m",
    rvq="rvq_nq6_dc512_nc512_noshare_qdp0.2",
    transformer="t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns",
    residual="tres_nlayer8_ld384_ff1024_rvq6ns_cdp0.2_sw",
)


@dataclass(frozen=True)
class Asset:
    """One needed file: its path relative to the root and what is known about the released bytes.

    `sha256` is a full hash we trust (it makes a file "verified"); `sha256_prefix` and `size` come
    from a public mirror and are only informative.
    """

    rel: str
    kind: Kind
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    path: Path
    status: str  # MISSING, FOUND or VERIFIED
    detail: str = ""


# Released sizes and sha256 prefixes as seen in a public mirror (../shared/README.md): informative.
_RELEASED = {
    ("rvq", "model/net_best_fid.tar"): (84_070_519, "fd42f54d"),
    ("transformer", "model/latest.tar"): (55_933_307, "80776600"),
    ("residual", "model/net_best_fid.tar"): (61_196_511, "2541adf3"),
    ("length", "model/finest.tar"): (1_745_581, "90512e0e"),
}


def release_assets(release: Release = HUMANML3D, *, with_clip: bool = True) -> list[Asset]:
    """Every file the model needs for `release`, in the order the preferences list them."""
    informative = release == HUMANML3D

    def weights(role: str, folder: str, rel: str) -> Asset:
        size, prefix = _RELEASED[(role, rel)] if informative else (None, None)
        path = f"{checkpoints_rel(release)}/{folder}/{rel}"
        return Asset(path, Kind.WEIGHTS, size=size, sha256_prefix=prefix)

    def plain(folder: str, rel: str, kind: Kind) -> Asset:
        return Asset(f"{checkpoints_rel(release)}/{folder}/{rel}", kind)

    assets = [
        plain(release.rvq, "opt.txt", Kind.OPTIONS),
        weights("rvq", release.rvq, "model/net_best_fid.tar"),
        plain(release.rvq, "meta/mean.npy", Kind.META),
        plain(release.rvq, "meta/std.npy", Kind.META),
        plain(release.transformer, "opt.txt", Kind.OPTIONS),
        weights("transformer", release.transformer, "model/latest.tar"),
        plain(release.residual, "opt.txt", Kind.OPTIONS),
        weights("residual", release.residual, "model/net_best_fid.tar"),
        weights("length", "length_estimator", "model/finest.tar"),
    ]
    if with_clip:
        assets.append(Asset(CLIP_REL, Kind.CLIP, sha256=CLIP_SHA256))
    return assets


def checkpoints_rel(release: Release = HUMANML3D) -> str:
    """`checkpoints/<dataset>`: the folder that the official zip unpacks into."""
    return f"checkpoints/{release.dataset}"


def release_folders(release: Release = HUMANML3D) -> tuple[str, ...]:
    """The four model folders under `checkpoints/<dataset>/`."""
    return (release.rvq, release.transformer, release.residual, "length_estimator")


def discover_release(dataset_dir: Path, dataset: str = "t2m") -> Release | None:
    """The release found in a `checkpoints/<dataset>` folder, by the official name prefixes.

    Lets the same checks run on folders with other names (the small seeded reference models);
    the transformer's `vq_name` picks the VQ when several are present.
    """
    try:
        folders = sorted(p.name for p in dataset_dir.iterdir() if (p / "opt.txt").is_file())
    except OSError:
        return None
    transformers = [f for f in folders if f.startswith("t2m_")]
    if not transformers:
        return None
    transformer = HUMANML3D.transformer if HUMANML3D.transformer in transformers else transformers[0]
    vq_name = read_opt(dataset_dir / transformer / "opt.txt").get("vq_name", "")
    residuals = [
        f for f in folders
        if f.startswith("tres_") and read_opt(dataset_dir / f / "opt.txt").get("vq_name") == vq_name
    ]
    if vq_name not in folders or not residuals:
        return None
    residual = HUMANML3D.residual if HUMANML3D.residual in residuals else residuals[0]
    return Release(dataset=dataset, rvq=vq_name, transformer=transformer, residual=residual)


def read_opt(path: Path) -> dict[str, str]:
    """The options of an official opt.txt as text (the loader's own parser), {} when unreadable."""
    try:
        return {key: str(value) for key, value in read_options(path).items()}
    except (ModelError, OSError):
        return {}


# Hashing a 350 MB file takes seconds; the UI redraws often. Cache by (path, size, mtime).
_hash_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> str:
    """Hex SHA-256 of a file, cached while its size and mtime stay the same."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _hash_cache:
        return _hash_cache[key]
    digest, done = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            if cancel is not None and cancel():
                raise InterruptedError(f"hashing {path} was cancelled")
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, st.st_size)
    _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def check_asset(
    root: Path, asset: Asset, *, pinned: str | None = None, hash_files: bool = False
) -> AssetStatus:
    """Status of one file. Without `hash_files` a file is "found" unless its hash is cached."""
    path = root / asset.rel
    if not path.is_file():
        return AssetStatus(asset, path, MISSING, "not there")
    want = (pinned or asset.sha256 or "").strip().lower() or None
    st = path.stat()
    if want is None:
        return AssetStatus(asset, path, FOUND, _informative(asset, st.st_size))
    cached = _hash_cache.get((str(path.resolve()), st.st_size, st.st_mtime_ns))
    if cached is None and not hash_files:
        return AssetStatus(asset, path, FOUND, "not checked yet")
    got = cached or sha256_file(path)
    if got == want:
        return AssetStatus(asset, path, VERIFIED, f"sha256 {got[:12]}…")
    source = "pinned" if pinned else "known"
    return AssetStatus(asset, path, FOUND, f"sha256 {got[:12]}… differs from the {source} {want[:12]}…")


def _informative(asset: Asset, size: int) -> str:
    """What the mirror's size and prefix say, without claiming verification."""
    if asset.size is None:
        return f"{size:,} bytes"
    if size != asset.size:
        return f"{size:,} bytes; the release has {asset.size:,}"
    return f"{size:,} bytes, the release's size"


def check_assets(
    root: Path,
    release: Release = HUMANML3D,
    *,
    pins: Mapping[str, str] | None = None,
    hash_files: bool = False,
    clip_root: Path | None = None,
) -> list[AssetStatus]:
    """Status of every needed file. `pins` maps an asset's `rel` to a user-pinned sha256.

    With `clip_root`, CLIP is looked for at `clip_root/clip/ViT-B-32.pt` instead: e.g. `~/.cache`,
    where the official `clip.load` keeps it.
    """
    pins = pins or {}
    result = []
    for asset in release_assets(release):
        base = clip_root if (asset.kind is Kind.CLIP and clip_root is not None) else root
        result.append(check_asset(base, asset, pinned=pins.get(asset.rel), hash_files=hash_files))
    return result


def all_present(statuses: Iterable[AssetStatus]) -> bool:
    """True when nothing is missing (found or verified is enough to run)."""
    return all(s.status != MISSING for s in statuses)


def summary(statuses: Iterable[AssetStatus]) -> str:
    """One line for the panel, e.g. '9 of 10 files present, 0 verified; missing: clip/ViT-B-32.pt'."""
    statuses = list(statuses)
    missing = [s.asset.rel for s in statuses if s.status == MISSING]
    verified = sum(s.status == VERIFIED for s in statuses)
    line = f"{len(statuses) - len(missing)} of {len(statuses)} files present, {verified} verified"
    if missing:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        line += "; missing: " + ", ".join(missing[:2]) + more
    return line

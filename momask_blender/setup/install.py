"""Install the weights a user downloaded: the official zip or `checkpoints/` folder, and OpenAI's CLIP.

Pure Python, run from a worker thread with `progress(done, total)` and a cancel flag. Everything is
unpacked into a temporary folder inside the target root first and moved into place only when the
structure checks out, so a bad or cancelled install leaves the root as it was. Zips are untrusted:
a member that would land outside its folder (absolute path, `..`, drive letter, symlink) is refused
before anything is written.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from model_core.errors import ModelError
from model_core.inputs.paths import replacing

from .assets import (
    CLIP_MAX_BYTES,
    CLIP_REL,
    CLIP_SHA256,
    CLIP_URL,
    CLIP_URL_ORIGIN,
    HUMANML3D,
    HUMANML3D_ZIP_DRIVE_ID,
    HUMANML3D_ZIP_NAME,
    INSTALL_MAX_BYTES,
    MODELS_ZIP_MAX_BYTES,
    Release,
    checkpoints_rel,
    discover_release,
    read_opt,
    release_assets,
    release_folders,
)
from .download import (
    DRIVE_URL,
    CancelFlag,
    DownloadCancelled,
    DownloadError,
    WrongFileError,
    download,
    download_google_drive,
    drive_view_url,
    is_cancelled,
)

ProgressFn = Callable[[int, int | None], None]
_CHUNK = 1 << 20
_SEARCH_DEPTH = 4  # how deep inside a zip/folder the checkpoints/t2m level may sit
MAX_MEMBERS = 10_000  # the official zip holds a few dozen files
MAX_RATIO = 100       # uncompressed / compressed: weights barely compress, a zip bomb compresses 1000x
RATIO_FROM = 1 << 20  # small text files may compress well: the ratio counts from 1 MB up
MAX_NAME_BYTES = 255  # one path component, as most file systems allow
MAX_PATH_BYTES = 1024


class InstallError(Exception):
    """The file cannot be installed; the message says why."""


class InstallCancelled(InstallError):
    """The cancel flag was raised; nothing was changed."""


def install_from_path(
    path: Path,
    root: Path,
    release: Release | None = HUMANML3D,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
) -> list[Path]:
    """Install whatever the user picked: a models zip, a checkpoints folder or `ViT-B-32.pt`."""
    path = Path(path)
    if path.is_dir():
        return install_checkpoints_folder(path, root, release, progress=progress, cancel=cancel)
    if path.suffix.lower() == ".pt":
        return [install_clip(path, root, progress=progress, cancel=cancel)]
    if zipfile.is_zipfile(path):
        return install_models_zip(path, root, release, progress=progress, cancel=cancel)
    raise InstallError(f"{path.name}: expected humanml3d_models.zip, a checkpoints folder or ViT-B-32.pt")


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member could write outside the folder it is unpacked into (None if it can't)."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in the path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def check_zip_members(zf: zipfile.ZipFile, max_bytes: int = INSTALL_MAX_BYTES) -> None:
    """Refuse the whole archive, before anything is written, if a member is unsafe (zip slip), its
    name is listed twice, is both a file and a folder or is too long, or if the declared sizes are
    past `max_bytes` or compress like a zip bomb."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InstallError(f"refused: the zip holds {len(infos):,} members, more than the {MAX_MEMBERS:,} expected")
    files: set[str] = set()
    folders: set[str] = set()
    total = 0
    for info in infos:
        if (reason := unsafe_member_reason(info)) is not None:
            raise InstallError(f"refused: the zip member {info.filename!r} is unsafe ({reason})")
        name = info.filename.replace("\\", "/").strip("/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts) or len(name.encode("utf-8")) > MAX_PATH_BYTES:
            raise InstallError(f"refused: the zip member {name[:60]!r}... has a name too long for a file system")
        key = "/".join(parts)
        if info.is_dir():
            if key in files:
                raise InstallError(f"refused: {key!r} is both a file and a folder in the zip")
            folders.add(key)
            continue
        if key in files:
            raise InstallError(f"refused: the zip lists {key!r} twice (which copy is the right one?)")
        if key in folders:
            raise InstallError(f"refused: {key!r} is both a file and a folder in the zip")
        files.add(key)
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        total += info.file_size
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise InstallError(f"refused: the zip member {key!r} claims {info.file_size:,} bytes from "
                               f"{info.compress_size:,} (a zip bomb?)")
    clash = files & folders
    if clash:
        raise InstallError(f"refused: {sorted(clash)[0]!r} is both a file and a folder in the zip")
    if total > max_bytes:
        raise InstallError(f"refused: the zip unpacks to {total:,} bytes, more than the {max_bytes:,} an install "
                           "of the models may take")


def install_models_zip(
    zip_path: Path,
    root: Path,
    release: Release | None = HUMANML3D,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
) -> list[Path]:
    """Unpack the official `humanml3d_models.zip` into `<root>/checkpoints/t2m/`.

    Returns the installed model folders. `release=None` accepts any complete release found in
    the zip (used for the small reference models).
    """
    root = Path(root)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InstallError(f"{Path(zip_path).name} is not a readable zip: {exc}") from exc
    with zf:
        check_zip_members(zf)  # before anything is created on disk
        members = [i for i in zf.infolist() if not i.is_dir()]
        with _staging(root) as tmp:
            _check_space(root, sum(i.file_size for i in members))
            _extract(zf, members, tmp, progress, cancel)
            return _install_release_tree(tmp, root, release, Path(zip_path).name)


def install_checkpoints_folder(
    src: Path,
    root: Path,
    release: Release | None = HUMANML3D,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
) -> list[Path]:
    """Copy a `checkpoints/` folder (or its `t2m/` folder) into `<root>/checkpoints/t2m/`."""
    src, root = Path(src), Path(root)
    dataset_dir = _find_dataset_dir(src, release)
    if dataset_dir is None:
        raise InstallError(f"{src} holds no MoMask checkpoints ({_expected(release)})")
    found = release or discover_release(dataset_dir)
    assert found is not None
    if dataset_dir.resolve() == (root / checkpoints_rel(found)).resolve():
        return [dataset_dir / name for name in release_folders(found)]  # installed already
    files = _folder_files(dataset_dir, release_folders(found))
    total = sum(p.stat().st_size for p in files)
    if total > INSTALL_MAX_BYTES:
        raise InstallError(f"{src} holds {total:,} bytes of model files, more than the {INSTALL_MAX_BYTES:,} an "
                           "install of the models may take")
    with _staging(root) as tmp:
        _check_space(root, total)
        done = 0
        for path in files:
            target = tmp / path.relative_to(dataset_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as fin, open(target, "wb") as fout:
                done = _copy(fin, fout, done, total, progress, cancel)
        return _install_release_tree(tmp, root, found, str(src))


def install_clip(
    src: Path,
    root: Path,
    *,
    sha256: str | None = CLIP_SHA256,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
) -> Path:
    """Copy OpenAI's `ViT-B-32.pt` to `<root>/clip/ViT-B-32.pt`, checking its SHA-256 on the way.

    `sha256=None` skips the check (a TorchScript archive is still required): for test models.
    """
    src, dest = Path(src), Path(root) / CLIP_REL
    if not zipfile.is_zipfile(src):
        raise InstallError(f"{src.name} is not a TorchScript archive like OpenAI's ViT-B-32.pt")
    total = src.stat().st_size
    if total > CLIP_MAX_BYTES:
        raise InstallError(f"{src.name} has {total:,} bytes; OpenAI's ViT-B-32.pt has about 354 MB")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _check_space(dest.parent, total)
    digest = hashlib.sha256()
    # written through model_core.inputs.paths: a temporary file of its own (a resumable download's
    # `ViT-B-32.pt.part` beside it stays), flushed to disk, renamed only when the hash checks out
    try:
        with open(src, "rb") as fin, replacing(dest, "CLIP file") as fout:
            _copy(fin, fout, 0, total, progress, cancel, digest)
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise InstallError(
                    f"{src.name} is not OpenAI's ViT-B/32: sha256 {digest.hexdigest()}, expected {sha256}"
                )
    except ModelError as err:
        raise InstallError(str(err)) from None
    return dest


# --- download, then install ----------------------------------------------------------------------

def offline_instructions(root: Path) -> str:
    """What to tell a user when Blender's online access is off."""
    return (
        "Downloading is off because Blender's online access is not allowed "
        "(Edit > Preferences > System > Network > Allow Online Access).\n"
        f"Or download these by hand and use Install from File:\n"
        f"  - {HUMANML3D_ZIP_NAME}: {drive_view_url(HUMANML3D_ZIP_DRIVE_ID)}\n"
        f"  - ViT-B-32.pt: {CLIP_URL}\n"
        f"They will be installed into {root}."
    )


def download_models(
    root: Path,
    *,
    allow_online: bool,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    on_stage: Callable[[str], None] | None = None,
    cancel: CancelFlag = None,
    drive_url: str = DRIVE_URL,
    file_id: str = HUMANML3D_ZIP_DRIVE_ID,
    **download_options,
) -> list[Path]:
    """Fetch the official humanml3d_models.zip from Google Drive and install it under `root`.

    The zip's hash is not published: pass a user-pinned `sha256`, otherwise the unpacked
    structure is the check. The zip is deleted afterwards, installed or not.
    """
    if not allow_online:
        raise DownloadError(offline_instructions(root))
    zip_path = Path(root) / "downloads" / HUMANML3D_ZIP_NAME
    _stage(on_stage, f"Downloading {HUMANML3D_ZIP_NAME}")
    try:
        download_options.setdefault("max_bytes", MODELS_ZIP_MAX_BYTES)
        download_google_drive(file_id, zip_path, base_url=drive_url, sha256=sha256, progress=progress,
                              cancel=cancel, **download_options)
        _stage(on_stage, f"Unpacking {HUMANML3D_ZIP_NAME}")
        return install_models_zip(zip_path, root, progress=progress, cancel=cancel)
    finally:
        zip_path.unlink(missing_ok=True)
        if zip_path.parent.is_dir() and not any(zip_path.parent.iterdir()):
            zip_path.parent.rmdir()


def download_clip(
    root: Path,
    *,
    allow_online: bool,
    progress: ProgressFn | None = None,
    on_stage: Callable[[str], None] | None = None,
    cancel: CancelFlag = None,
    urls: tuple[str, ...] = (CLIP_URL, CLIP_URL_ORIGIN),
    sha256: str = CLIP_SHA256,
    **download_options,
) -> Path:
    """Fetch OpenAI's ViT-B-32.pt straight to `<root>/clip/`, verified against its SHA-256.

    The next URL is tried only when one cannot be reached or has no such file; a file with the
    wrong hash or a cancel stops at once.
    """
    if not allow_online:
        raise DownloadError(offline_instructions(root))
    _stage(on_stage, "Downloading ViT-B-32.pt")
    download_options.setdefault("max_bytes", CLIP_MAX_BYTES)
    errors = []
    for url in urls:
        try:
            return download(url, Path(root) / CLIP_REL, sha256=sha256, progress=progress, cancel=cancel,
                            **download_options)
        except DownloadError as exc:
            if isinstance(exc, DownloadCancelled | WrongFileError):
                raise
            errors.append(str(exc))
    raise DownloadError("could not download ViT-B-32.pt:\n" + "\n".join(errors))


def _stage(on_stage: Callable[[str], None] | None, text: str) -> None:
    if on_stage is not None:
        on_stage(text)


# --- helpers ------------------------------------------------------------------------------------

@contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A temporary folder inside `root` (same disk, so the final moves are renames), always removed."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InstallError(
            f"not enough disk space in {folder}: needs {needed / 1e6:,.0f} MB, {free / 1e6:,.0f} MB free"
        )


def _copy(fin, fout, done: int, total: int | None, progress: ProgressFn | None, cancel: CancelFlag,
          digest=None) -> int:
    """Copy one stream in chunks with progress, cancel and an optional running hash."""
    while chunk := fin.read(_CHUNK):
        if is_cancelled(cancel):
            raise InstallCancelled("install cancelled")
        fout.write(chunk)
        if digest is not None:
            digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return done


def _extract(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], tmp: Path,
             progress: ProgressFn | None, cancel: CancelFlag) -> None:
    """Write the (already checked) members under `tmp`, never following the names outside it."""
    total, done, base = sum(i.file_size for i in members), 0, tmp.resolve()
    for info in members:
        target = (tmp / info.filename.replace("\\", "/")).resolve()
        if not target.is_relative_to(base):  # belt and braces after check_zip_members
            raise InstallError(f"refused: the zip member {info.filename!r} is unsafe (outside the folder)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as fin, open(target, "wb") as fout:
                done = _copy(fin, fout, done, total, progress, cancel)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
            raise InstallError(f"could not unpack {info.filename}: {exc}") from exc


def _folder_files(dataset_dir: Path, folders) -> list[Path]:
    """The regular files under the release's folders; a symbolic link leading out of the folder being
    installed (a file elsewhere on the machine) or anything but a file or folder is refused."""
    base = dataset_dir.resolve()
    files = []
    for name in folders:
        for top, dirs, names in os.walk(dataset_dir / name, followlinks=False):
            for entry in sorted(names) + [d for d in dirs if (Path(top) / d).is_symlink()]:
                path = Path(top) / entry
                if path.is_symlink() and not path.resolve().is_relative_to(base):
                    raise InstallError(f"refused: {path} is a symbolic link to {path.resolve()}, outside the folder "
                                       "being installed; copy the real file there instead")
                if path.is_file():
                    files.append(path)
                elif not path.is_dir():
                    raise InstallError(f"refused: {path} is not a regular file")
    return sorted(files)


def _expected(release: Release | None) -> str:
    if release is None:
        return "expected folders named like t2m_*, tres_*, rvq_* with opt.txt"
    return "expected " + ", ".join(release_folders(release))


def _find_dataset_dir(top: Path, release: Release | None) -> Path | None:
    """The folder that holds the model folders (`checkpoints/t2m` in the official layout)."""
    queue = [(top, 0)]
    while queue:
        folder, depth = queue.pop(0)
        if release is not None and (folder / release.rvq / "opt.txt").is_file():
            return folder
        if release is None and discover_release(folder) is not None:
            return folder
        if depth < _SEARCH_DEPTH:
            try:
                subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            # `t2m` before `kit` when a whole checkpoints/ folder was given.
            subs.sort(key=lambda p: (p.name != "t2m", p.name))
            queue.extend((p, depth + 1) for p in subs if not p.name.startswith(("__MACOSX", ".")))
    return None


def _install_release_tree(tmp: Path, root: Path, release: Release | None, source: str) -> list[Path]:
    """Check the unpacked tree and move its model folders into `<root>/checkpoints/<dataset>/`."""
    dataset_dir = _find_dataset_dir(tmp, release)
    if dataset_dir is None:
        raise InstallError(f"{source} holds no MoMask checkpoints ({_expected(release)}); nothing installed")
    release = release or discover_release(dataset_dir)
    assert release is not None
    prefix = checkpoints_rel(release) + "/"
    missing = [a.rel[len(prefix):] for a in release_assets(release, with_clip=False)
               if not (dataset_dir / a.rel[len(prefix):]).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        listed = ", ".join(missing[:3]) + more
        raise InstallError(f"{source} is incomplete: missing {listed}; nothing installed")
    for name in release_folders(release):
        opt_name = read_opt(dataset_dir / name / "opt.txt").get("name")
        if opt_name is not None and opt_name != name:
            raise InstallError(f"{source}: {name}/opt.txt says name: {opt_name}; nothing installed")
    dest_dir = root / checkpoints_rel(release)
    dest_dir.mkdir(parents=True, exist_ok=True)
    installed: list[Path] = []
    replaced: list[tuple[Path, Path]] = []  # (destination, the previous install set aside in staging)
    try:
        for name in release_folders(release):
            dest = dest_dir / name
            if dest.exists():
                backup = tmp / f".old-{name}"
                os.replace(dest, backup)  # removed with the staging folder once all is in place
                replaced.append((dest, backup))
            os.replace(dataset_dir / name, dest)
            installed.append(dest)
    except OSError as err:  # put the previous install back: a failed update must not lose it
        for dest in installed:
            shutil.rmtree(dest, ignore_errors=True)
        for dest, backup in replaced:
            if backup.exists() and not dest.exists():
                os.replace(backup, dest)
        raise InstallError(f"installing into {dest_dir} failed ({err}); the previous files are kept") from err
    return installed

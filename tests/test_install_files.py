"""Installing weights from a zip or folder: zip slip refused, bad trees refused, nothing half-done."""
from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import pytest

from momask_blender.setup import assets
from momask_blender.setup.install import (
    InstallCancelled,
    InstallError,
    install_checkpoints_folder,
    install_clip,
    install_from_path,
    install_models_zip,
)

from .conftest import shared_path

PREFIX = assets.checkpoints_rel() + "/"


def release_files(release: assets.Release = assets.HUMANML3D) -> dict[str, bytes]:
    """A tiny stand-in for every checkpoint file, keyed by its path under checkpoints/t2m/."""
    files = {}
    for asset in assets.release_assets(release, with_clip=False):
        rel = asset.rel[len(PREFIX):]
        folder = rel.split("/")[0]
        files[rel] = f"name: {folder}\n".encode() if rel.endswith("opt.txt") else rel.encode() * 50
    return files


def make_zip(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(prefix + rel, data)
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("prefix", ["", "humanml3d_models/", "checkpoints/t2m/"])
def test_good_zip_is_installed(tmp_path: Path, prefix: str) -> None:
    zip_path = make_zip(tmp_path / "humanml3d_models.zip", release_files(), prefix)
    root = tmp_path / "user"
    seen = []
    installed = install_models_zip(zip_path, root, progress=lambda d, t: seen.append((d, t)))
    assert [p.name for p in installed] == list(assets.release_folders())
    statuses = assets.check_assets(root)
    assert [s.status for s in statuses] == [assets.FOUND] * 9 + [assets.MISSING]
    assert not [p for p in root.iterdir() if p.name.startswith(".install-")]
    assert seen[-1][0] == seen[-1][1] == sum(len(d) for d in release_files().values())


def test_reinstall_replaces_the_old_folders(tmp_path: Path) -> None:
    root = tmp_path / "user"
    install_models_zip(make_zip(tmp_path / "a.zip", release_files()), root)
    stale = root / PREFIX / assets.HUMANML3D.rvq / "stale.txt"
    stale.write_text("old")
    install_models_zip(make_zip(tmp_path / "b.zip", release_files()), root)
    assert not stale.exists()
    assert tree(root / PREFIX) == sorted(
        {*(f for f in release_files()), *(str(Path(f).parent) for f in release_files()),
         *(f.split("/")[0] for f in release_files())})


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "C:/evil.txt",
                                  "..\\evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, evil: str) -> None:
    files = release_files() | {evil: b"pwned"}
    root = tmp_path / "user"
    with pytest.raises(InstallError, match="unsafe"):
        install_models_zip(make_zip(tmp_path / "m.zip", files), root)
    assert not root.exists()
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "m.zip", release_files())
    link = zipfile.ZipInfo("link")
    link.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` stores it
    with zipfile.ZipFile(zip_path, "a") as zf:
        zf.writestr(link, "/etc")
    with pytest.raises(InstallError, match="symbolic link"):
        install_models_zip(zip_path, tmp_path / "user")
    assert tree(tmp_path / "user") == []


def test_incomplete_zip_leaves_nothing_and_keeps_a_previous_install(tmp_path: Path) -> None:
    root = tmp_path / "user"
    install_models_zip(make_zip(tmp_path / "good.zip", release_files()), root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    files = release_files()
    del files[f"{assets.HUMANML3D.transformer}/model/latest.tar"]
    with pytest.raises(InstallError, match=r"incomplete: missing t2m_nlayer8.*/model/latest.tar"):
        install_models_zip(make_zip(tmp_path / "bad.zip", files), root)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_unrelated_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="holds no MoMask checkpoints"):
        install_models_zip(make_zip(tmp_path / "x.zip", {"readme.txt": b"hi"}), tmp_path / "user")
    assert tree(tmp_path / "user") == []


def test_mismatched_opt_name_is_refused(tmp_path: Path) -> None:
    files = release_files()
    files[f"{assets.HUMANML3D.residual}/opt.txt"] = b"name: something_else\n"
    with pytest.raises(InstallError, match="opt.txt says name: something_else"):
        install_models_zip(make_zip(tmp_path / "m.zip", files), tmp_path / "user")
    assert tree(tmp_path / "user") == []


def test_cancel_during_unpacking_leaves_nothing(tmp_path: Path) -> None:
    flag = threading.Event()
    with pytest.raises(InstallCancelled):
        install_models_zip(make_zip(tmp_path / "m.zip", release_files()), tmp_path / "user",
                           progress=lambda d, t: flag.set(), cancel=flag)
    assert tree(tmp_path / "user") == []


def test_checkpoints_folder_with_t2m_and_kit(tmp_path: Path) -> None:
    src = tmp_path / "checkpoints"
    for rel, data in release_files().items():
        for dataset in ("kit", "t2m"):
            path = src / dataset / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if dataset == "t2m" else b"kit")
    root = tmp_path / "user"
    install_from_path(src, root)
    assert (root / PREFIX / assets.HUMANML3D.rvq / "meta/mean.npy").read_bytes() == release_files()[
        f"{assets.HUMANML3D.rvq}/meta/mean.npy"]
    assert assets.all_present(assets.check_assets(root)[:-1])


def test_reference_folder_with_its_own_names(tmp_path: Path) -> None:
    ref = shared_path("reference")
    root = tmp_path / "user"
    installed = install_checkpoints_folder(ref / "checkpoints", root, release=None)
    release = assets.discover_release(root / PREFIX)
    assert release is not None and [p.name for p in installed] == list(assets.release_folders(release))
    install_clip(ref / "clip/ViT-B-32.pt", root, sha256=None)
    assert assets.all_present(assets.check_assets(root, release))


def test_clip_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    fake = make_zip(tmp_path / "ViT-B-32.pt", {"archive/data.pkl": b"x"})
    with pytest.raises(InstallError, match="is not OpenAI's ViT-B/32: sha256"):
        install_clip(fake, tmp_path / "user")
    assert tree(tmp_path / "user") == ["clip"]


def test_clip_with_a_pinned_hash_is_verified(tmp_path: Path) -> None:
    fake = make_zip(tmp_path / "ViT-B-32.pt", {"archive/data.pkl": b"x"})
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    dest = install_clip(fake, tmp_path / "user", sha256=digest)
    clip = assets.release_assets()[-1]
    status = assets.check_asset(tmp_path / "user", clip, pinned=digest, hash_files=True)
    assert dest.read_bytes() == fake.read_bytes() and status.status == assets.VERIFIED
    assert tree(tmp_path / "user") == ["clip", "clip/ViT-B-32.pt"]


def test_installing_clip_from_a_file_keeps_a_resumable_download_beside_it(tmp_path: Path) -> None:
    """The download resumes from `ViT-B-32.pt.part`: an install from a file (which may be refused)
    writes a temporary file of its own and leaves that one as it is."""
    from momask_blender.setup.download import part_path

    root = tmp_path / "user"
    partial = part_path(root / assets.CLIP_REL)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"the first megabytes of a download")
    fake = make_zip(tmp_path / "ViT-B-32.pt", {"archive/data.pkl": b"x"})
    with pytest.raises(InstallError, match="is not OpenAI's ViT-B/32"):
        install_clip(fake, root)
    assert partial.read_bytes() == b"the first megabytes of a download"
    dest = install_clip(fake, root, sha256=None)
    assert dest.read_bytes() == fake.read_bytes() and partial.read_bytes() == b"the first megabytes of a download"
    assert tree(root) == ["clip", "clip/ViT-B-32.pt", "clip/ViT-B-32.pt.part"]


def test_clip_must_be_a_torchscript_archive(tmp_path: Path) -> None:
    bad = tmp_path / "ViT-B-32.pt"
    bad.write_bytes(b"<html>not a model</html>")
    with pytest.raises(InstallError, match="not a TorchScript archive"):
        install_from_path(bad, tmp_path / "user")


def test_a_failed_update_keeps_the_previous_install(tmp_path: Path, monkeypatch) -> None:
    import os

    from momask_blender.setup import install

    ref = shared_path("reference")
    root = tmp_path / "user"
    install_checkpoints_folder(ref / "checkpoints", root, release=None)
    before = tree(root)
    moved = []
    real_replace = os.replace

    def failing_replace(src, dst):
        if ".old-" not in str(dst):  # moving a new folder into place
            moved.append(dst)
            if len(moved) == 2:
                raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(install.os, "replace", failing_replace)
    with pytest.raises(InstallError, match="previous files are kept"):
        install_checkpoints_folder(ref / "checkpoints", root, release=None)
    monkeypatch.setattr(install.os, "replace", real_replace)
    assert tree(root) == before
    assert assets.all_present(assets.check_assets(root, assets.discover_release(root / PREFIX))[:-1])

"""The extension zip: built with Blender's own tool, installed into Blender-as-a-module, used, removed.

The build downloads wheels from PyPI with pip (skipped with a reason when PyPI is unreachable);
everything else here stays on this machine.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tools import build_extension as bx

ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"

# Used only when the Blender layer has not written its own manifest / entry point yet.
STAND_IN_MANIFEST = """\
schema_version = "1.0.0"
id = "momask"
version = "0.1.0"
name = "MoMask"
tagline = "Text to motion for armatures"
maintainer = "momask-blender developers"
type = "add-on"
blender_version_min = "4.2.0"
license = ["SPDX:MIT"]

[permissions]
files = "Read model weights and write downloads"
network = "Download model weights and PyTorch"
"""
STAND_IN_INIT = "def register():\n    pass\n\n\ndef unregister():\n    pass\n"


def test_manifest_gets_our_wheels_and_platforms() -> None:
    text = ('id = "momask"\nwheels = [\n  "./wheels/old-1.0-py3-none-any.whl",\n]  # old\n'
            'platforms = ["linux-x64"]\n\n[permissions]\nnetwork = "x"\n')
    out = tomllib.loads(bx.manifest_with(text, ["./wheels/a-1-py3-none-any.whl"], ["windows-x64"]))
    assert out == {"id": "momask", "wheels": ["./wheels/a-1-py3-none-any.whl"],
                   "platforms": ["windows-x64"], "permissions": {"network": "x"}}


def test_every_model_core_dependency_is_bundled_or_blenders() -> None:
    bx.check_light_deps(ROOT)
    assert set(bx.PLATFORM_TAGS) == {"linux-x64", "windows-x64", "macos-arm64"}


def _this_platform() -> str | None:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux") and machine in ("x86_64", "amd64"):
        return "linux-x64"
    if sys.platform == "win32" and machine in ("x86_64", "amd64"):
        return "windows-x64"
    if sys.platform == "darwin" and machine == "arm64":
        return "macos-arm64"
    return None


def _index_reachable() -> bool:
    host = urlsplit(os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")).hostname or "pypi.org"
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One zip for this machine's platform and Python, built from a copy of the checkout."""
    plat = _this_platform()
    if plat is None:
        pytest.skip(f"no Blender platform for {sys.platform}/{platform.machine()}")
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("needs the bpy wheel (Blender's extension tool ships in it)")
    if not _index_reachable():
        pytest.skip("PyPI is unreachable: the build downloads the dependency wheels with pip")
    repo = tmp_path_factory.mktemp("repo")
    for name in ("pyproject.toml", "model_core", "momask_blender", "__init__.py", "blender_manifest.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, repo / name)
    if not (repo / "blender_manifest.toml").exists():
        (repo / "blender_manifest.toml").write_text(STAND_IN_MANIFEST)
    if not (repo / "__init__.py").exists():
        (repo / "__init__.py").write_text(STAND_IN_INIT)
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    zips = bx.build(repo, repo / "dist", [plat], [python], stage_dir=repo / "stage")
    assert [z.name for z in zips] == [f"momask-{_version(repo)}-{plat}.zip"]
    return zips[0]


def _version(repo: Path) -> str:
    return tomllib.loads((repo / "blender_manifest.toml").read_text())["version"]


def test_zip_holds_the_extension_and_its_wheels_only(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"__init__.py", "blender_manifest.toml", "momask_blender", "wheels"}
    wheels = [n for n in names if n.startswith("wheels/")]
    for dep in ("regex", "ftfy", "wcwidth", "clip_anytorch", "momask_model_core"):
        assert any(n.startswith(f"wheels/{dep}-") for n in wheels), dep
    # Blender bundles numpy, PyTorch is installed on demand, SciPy is not needed by model_core
    assert not any(n.startswith(("wheels/numpy-", "wheels/torch-", "wheels/scipy-")) for n in wheels)


INSTALL_SCRIPT = textwrap.dedent("""
    import os, sys, json
    import bpy
    zip_path, reference = sys.argv[1], sys.argv[2]
    out = {}
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    out["enabled"] = "bl_ext.user_default.momask" in bpy.context.preferences.addons
    import model_core
    out["model_core"] = model_core.__file__
    if reference != "-":
        import numpy as np
        from model_core.generation.pipeline import GenerationSettings, MoMask
        model = MoMask.load(os.path.join(reference, "checkpoints"), os.path.join(reference, "clip", "ViT-B-32.pt"))
        motion = model.generate("a person walks forward", frames=40, seed=1,
                                settings=GenerationSettings(steps=2))
        out["joints"] = list(motion.joints.shape)
        out["finite"] = bool(np.isfinite(motion.joints).all())
    repos = bpy.context.preferences.extensions.repos
    index = next(i for i, r in enumerate(repos) if r.module == "user_default")
    bpy.ops.extensions.package_uninstall(repo_index=index, pkg_id="momask")
    out["after"] = sorted(a.module for a in bpy.context.preferences.addons if "momask" in a.module)
    out["left"] = sorted(n for n in os.listdir(repos[index].directory) if not n.startswith("."))
    print("RESULT " + json.dumps(out), flush=True)
    if bpy.app.version < (4, 3, 0):  # bpy 4.2 crashes in its own teardown (momask_blender.scene.teardown;
        # not imported: this script runs the installed extension, not the checkout)
        os._exit(0)
""")


def test_installs_registers_generates_and_uninstalls(built_zip: Path, tmp_path: Path) -> None:
    script = tmp_path / "install_in_blender.py"
    script.write_text(INSTALL_SCRIPT)
    reference = str(SHARED_REFERENCE) if SHARED_REFERENCE.is_dir() else "-"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user")}
    env.pop("PYTHONPATH", None)
    # cwd outside the checkout: model_core must come from the extension's own wheel.
    proc = subprocess.run([sys.executable, str(script), str(built_zip), reference], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["enabled"], proc.stdout[-3000:]
    assert str(tmp_path / "blender_user") in result["model_core"]
    if reference != "-":
        assert result["joints"] == [1, 40, 22, 3] and result["finite"]
    assert result["after"] == [] and result["left"] == []
    site = tmp_path / "blender_user" / "extensions" / ".local"
    assert not [p for p in site.rglob("*") if p.is_file()], "wheels left installed after uninstall"

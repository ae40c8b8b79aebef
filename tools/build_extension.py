"""Build the installable extension zips: `dist/momask-<version>-<platform>.zip`, one per platform.

    python tools/build_extension.py [--platform linux-x64 ...] [--python 3.11 ...] [--out dist]

Steps: stage the extension files (root `__init__.py`, `momask_blender/`) in `build/extension/`;
download the light dependencies as binary wheels for every platform and Python version Blender
ships (3.11 for Blender 4.2-5.0, 3.13 for 5.1+); build the `model_core` wheel from this repository;
write the staged copy of `blender_manifest.toml` with `wheels` and `platforms` (the repository's
manifest is left alone); then let Blender's own extension tool (`blender_ext.py`, shipped inside the
`bpy` wheel and runnable with plain Python) build one zip per platform (`--split-platforms`) and
`validate` each. PyTorch is not bundled (far too large): the add-on installs it on demand.
Needs network access to PyPI (pip's cache makes rebuilds cheap).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Blender platform -> the wheel platform tags pip may pick for it. Blender 4.2+ needs glibc 2.28
# and macOS 11.2+; pip expands a macOS tag to older versions, not manylinux_2_x ones, so list them.
PLATFORM_TAGS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_12_0_arm64"],
}
PYTHONS = ("3.11", "3.13")

# What model_core imports besides torch and numpy (Blender bundles numpy): ftfy, regex; ftfy
# needs wcwidth; clip-anytorch only for CLIP's BPE vocabulary file (never imported).
LIGHT_DEPS = {
    "3.11": ["ftfy>=6.1", "wcwidth", "regex>=2023.0", "clip-anytorch==2.6.0"],
    "3.13": ["ftfy>=6.1", "wcwidth", "regex>=2023.0", "clip-anytorch==2.6.0"],
}
BUNDLED_BY_BLENDER = {"numpy"}
EXTENSION_FILES = ("__init__.py", "momask_blender")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildError(Exception):
    """The build cannot go on; the message says which step and why."""


def blender_ext_script() -> Path:
    """Blender's extension tool inside the installed `bpy` wheel (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise BuildError("the `bpy` wheel is needed for Blender's extension tool: pip install bpy==5.0.1")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise BuildError(f"blender_ext.py not found under {Path(spec.origin).parent}")
    return found[-1]


def check_light_deps(repo: Path) -> None:
    """Fail when model_core declares a dependency that the zip would not carry."""
    declared = tomllib.loads((repo / "pyproject.toml").read_text())["project"].get("dependencies", [])
    carried = {_name(spec) for specs in LIGHT_DEPS.values() for spec in specs}
    missing = sorted({_name(d) for d in declared} - carried - BUNDLED_BY_BLENDER)
    if missing:
        raise BuildError(f"pyproject.toml depends on {missing}, which LIGHT_DEPS does not bundle")


def _name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def run(cmd: list[str], what: str) -> str:
    """Run a build step; on failure raise with its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def download_wheels(dest: Path, platforms: list[str], pythons: list[str]) -> None:
    """`pip download` binary wheels of LIGHT_DEPS for every (platform, Python) pair into `dest`."""
    for platform in platforms:
        for python in pythons:
            tags = [arg for tag in PLATFORM_TAGS[platform] for arg in ("--platform", tag)]
            run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", python,
                 *tags, "--dest", str(dest), *LIGHT_DEPS[python]],
                f"pip download for {platform}, Python {python}")


def build_model_core_wheel(repo: Path, dest: Path) -> Path:
    """`pip wheel --no-deps .`: model_core as Blender will import it."""
    before = set(dest.glob("*.whl"))
    # From a copy, so setuptools' build/ and *.egg-info never land in the checkout.
    with tempfile.TemporaryDirectory(prefix="momask-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(repo / "model_core", src / "model_core", ignore=_IGNORE)
        shutil.copy2(repo / "pyproject.toml", src / "pyproject.toml")
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(dest), str(src)], "building the model_core wheel")
    built = sorted(set(dest.glob("*.whl")) - before)
    if len(built) != 1:
        raise BuildError(f"expected one model_core wheel, pip made {[p.name for p in built]}")
    return built[0]


def manifest_with(text: str, wheels: list[str], platforms: list[str]) -> str:
    """The manifest text with top-level `wheels` and `platforms` replaced by ours."""
    header = re.search(r"^\[[^\]\n]+\]\s*(#.*)?$", text, flags=re.MULTILINE)
    top, tables = (text[: header.start()], text[header.start():]) if header else (text, "")
    top = re.sub(r"^(wheels|platforms)\s*=\s*\[.*?\]\s*(#[^\n]*)?\n?", "", top, flags=re.MULTILINE | re.DOTALL)
    listed = ",\n".join(f"  {json.dumps(w)}" for w in wheels)  # JSON strings are TOML strings here
    ours = (
        "\n# Written by tools/build_extension.py for the zip.\n"
        f"platforms = [{', '.join(json.dumps(p) for p in platforms)}]\n"
        f"wheels = [\n{listed},\n]\n\n"
    )
    return top.rstrip("\n") + "\n" + ours + tables


def stage(repo: Path, stage_dir: Path, platforms: list[str], pythons: list[str]) -> Path:
    """Assemble the extension folder that blender_ext.py zips."""
    manifest = repo / "blender_manifest.toml"
    if not manifest.is_file():
        raise BuildError(f"{manifest} is missing: the Blender layer's manifest is needed to build")
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True)
    for name in EXTENSION_FILES:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, stage_dir / name, ignore=_IGNORE)
        elif src.is_file():
            shutil.copy2(src, stage_dir / name)
        else:
            raise BuildError(f"{src} is missing")
    wheels = stage_dir / "wheels"
    wheels.mkdir()
    download_wheels(wheels, platforms, pythons)
    for wheel in list(wheels.glob("*.whl")):
        if _name(wheel.name.split("-")[0]) in BUNDLED_BY_BLENDER:
            wheel.unlink()
    build_model_core_wheel(repo, wheels)
    names = sorted(f"./wheels/{w.name}" for w in wheels.glob("*.whl"))
    (stage_dir / "blender_manifest.toml").write_text(manifest_with(manifest.read_text(), names, platforms))
    tomllib.loads((stage_dir / "blender_manifest.toml").read_text())  # still valid TOML
    return stage_dir


def build_zips(stage_dir: Path, out_dir: Path, tool: Path) -> list[Path]:
    """One zip per platform with Blender's own `build --split-platforms`, each `validate`d."""
    data = tomllib.loads((stage_dir / "blender_manifest.toml").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"momask-{data['version']}.zip"
    for old in out_dir.glob(f"momask-{data['version']}-*.zip"):
        old.unlink()
    run([sys.executable, str(tool), "validate", str(stage_dir)], "validating the staged extension")
    run([sys.executable, str(tool), "build", "--source-dir", str(stage_dir), "--output-filepath", str(base),
         "--split-platforms"], "blender_ext.py build")
    zips = []
    for platform in data["platforms"]:
        made = out_dir / f"momask-{data['version']}-{platform.replace('-', '_')}.zip"
        final = out_dir / f"momask-{data['version']}-{platform}.zip"
        if not made.is_file():
            raise BuildError(f"blender_ext.py did not write {made}")
        made.replace(final)
        run([sys.executable, str(tool), "validate", str(final)], f"validating {final.name}")
        zips.append(final)
    return zips


def check_zip(path: Path, platform: str, pythons: list[str]) -> None:
    """What Blender's validation does not check: each Python gets its compiled wheels, no test files."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    # Blender reads a split zip's `[build.generated]` values in place of the top-level ones.
    generated = manifest.get("build", {}).get("generated", {})
    listed = set(generated.get("wheels", manifest.get("wheels", [])))
    if generated.get("platforms", manifest.get("platforms")) != [platform]:
        raise BuildError(f"{path.name}: the manifest's platforms are not [{platform!r}]")
    present = {"./" + n for n in names if n.startswith("wheels/")}
    if listed != present:
        raise BuildError(f"{path.name}: manifest wheels {sorted(listed ^ present)} do not match the files")
    if any(n.startswith(("tests/", "bench/", "model_core/")) for n in names):
        raise BuildError(f"{path.name} contains development files")
    if not any(n.startswith("wheels/momask_model_core-") for n in names):
        raise BuildError(f"{path.name} lacks the model_core wheel")
    for python in pythons:
        tag = "cp" + python.replace(".", "")
        for dep in ("regex",):
            if not any(n.startswith(f"wheels/{dep}-") and f"-{tag}-" in n for n in names):
                raise BuildError(f"{path.name} has no {dep} wheel for Python {python} on {platform}")


def build(repo: Path = ROOT, out_dir: Path | None = None, platforms: list[str] | None = None,
          pythons: list[str] | None = None, stage_dir: Path | None = None) -> list[Path]:
    """The whole build; returns the zips."""
    platforms = platforms or list(PLATFORM_TAGS)
    pythons = pythons or list(PYTHONS)
    check_light_deps(repo)
    tool = blender_ext_script()
    staged = stage(repo, stage_dir or repo / "build" / "extension", platforms, pythons)
    zips = build_zips(staged, out_dir or repo / "dist", tool)
    for path, platform in zip(zips, platforms, strict=True):
        check_zip(path, platform, pythons)
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORM_TAGS),
                        help="repeat for several (default: all)")
    parser.add_argument("--python", action="append", choices=PYTHONS, help="repeat for several (default: all)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout to build from")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <repo>/dist)")
    args = parser.parse_args(argv)
    try:
        zips = build(args.repo, args.out, args.platform, args.python)
    except BuildError as exc:
        print(f"build_extension: {exc}", file=sys.stderr)
        return 1
    for path in zips:
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

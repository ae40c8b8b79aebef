"""The PyTorch installer: detection without importing, the pip command, progress, cancel, failure."""
from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from momask_blender.setup import pytorch

# A stand-in for pip: `python -m pip` finds it first through PYTHONPATH. It prints progress lines,
# honours --target, and sleeps or fails on request (FAKE_PIP env var).
FAKE_PIP = textwrap.dedent("""
    import os, sys, time
    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("pip 99.0 (fake)"); sys.exit(0)
    mode = os.environ.get("FAKE_PIP", "ok")
    target = args[args.index("--target") + 1]
    print("Collecting torch"); print("Downloading torch-9.9.9-cp311-none-any.whl (1 kB)")
    if mode == "fail":
        print("ERROR: No matching distribution found for torch"); sys.exit(1)
    os.makedirs(os.path.join(target, "torch"), exist_ok=True)
    open(os.path.join(target, "torch", "__init__.py"), "w").write("version = '9.9.9'\\n")
    if mode == "slow":
        time.sleep(30)
    print("Successfully installed torch-9.9.9")
""")


@pytest.fixture()
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "fakepip" / "pip"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_PIP)
    monkeypatch.setenv("PYTHONPATH", str(pkg.parent))
    return tmp_path / "user" / "site-packages-py311"


def test_find_spec_does_not_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "heavy_mod_for_test").mkdir()
    (tmp_path / "heavy_mod_for_test" / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert pytorch.module_available("heavy_mod_for_test")
    assert not marker.exists() and "heavy_mod_for_test" not in sys.modules
    assert pytorch.missing_modules(["json", "no_such_module_xyz"]) == ["no_such_module_xyz"]


def test_add_to_sys_path_appends_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert pytorch.add_to_sys_path(tmp_path) and sys.path[-1] == str(tmp_path)
    assert not pytorch.add_to_sys_path(tmp_path)
    assert not pytorch.add_to_sys_path(tmp_path / "absent")


def test_pip_command_per_build(tmp_path: Path) -> None:
    cpu = pytorch.pip_install_command(tmp_path, "cpu", python="py")
    assert cpu[:6] == ["py", "-m", "pip", "install", "--target", str(tmp_path)]
    assert cpu[cpu.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--only-binary=:all:" in cpu and cpu[-1] == "torch"
    cuda = pytorch.pip_install_command(tmp_path, "cu126", python="py", version="2.13.0")
    assert cuda[cuda.index("--index-url") + 1].endswith("/cu126") and cuda[-1] == "torch==2.13.0"
    assert "--index-url" not in pytorch.pip_install_command(tmp_path, "default", python="py")
    with pytest.raises(ValueError, match="unknown PyTorch build 'rocm'"):
        pytorch.pip_install_command(tmp_path, "rocm")
    assert [v for v, _ in pytorch.torch_variants("darwin")] == ["default"]
    assert "cpu" in [v for v, _ in pytorch.torch_variants("win32")]


def test_offline_gives_instructions_and_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "user" / "site-packages-py311"
    with pytest.raises(pytorch.DepsError, match="Allow Online Access") as info:
        pytorch.install_torch(target, "cpu", allow_online=False, python="/blender/python")
    assert "/blender/python -m pip install --target" in str(info.value)
    assert not (tmp_path / "user").exists()


def test_install_streams_lines_and_moves_into_place(fake_pip: Path) -> None:
    lines: list[str] = []
    out = pytorch.install_torch(fake_pip, "cpu", allow_online=True, on_line=lines.append)
    assert (out / "torch" / "__init__.py").is_file()
    assert "Collecting torch" in lines and lines[-1].startswith("PyTorch installed into")
    assert sorted(p.name for p in fake_pip.parent.iterdir()) == [fake_pip.name]


def test_pip_failure_reports_its_output_and_leaves_nothing(fake_pip: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_PIP", "fail")
    with pytest.raises(pytorch.DepsError, match="No matching distribution found for torch"):
        pytorch.install_torch(fake_pip, "cpu", allow_online=True)
    assert list(fake_pip.parent.iterdir()) == []


def test_cancel_stops_pip_and_keeps_the_previous_install(fake_pip: Path, monkeypatch) -> None:
    (fake_pip / "torch").mkdir(parents=True)
    monkeypatch.setenv("FAKE_PIP", "slow")
    flag = threading.Event()
    start = time.monotonic()
    with pytest.raises(pytorch.DepsCancelled):
        pytorch.install_torch(fake_pip, "cpu", allow_online=True, cancel=flag,
                           on_line=lambda line: line.startswith("Downloading") and flag.set())
    assert time.monotonic() - start < 10
    assert sorted(p.name for p in fake_pip.parent.iterdir()) == [fake_pip.name]
    assert [p.name for p in fake_pip.iterdir()] == ["torch"]


def test_run_command_error_names_the_command() -> None:
    with pytest.raises(pytorch.DepsError, match=r"exit 3"):
        pytorch.run_command([sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    with pytest.raises(pytorch.DepsError, match="could not start"):
        pytorch.run_command(["/no/such/python"])

"""Shared fixtures: where ../shared lives, and skips that name the missing folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip naming the folder that is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared folder beside the checkout)")
    return path


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch) -> None:
    """No test reaches past the loopback address: the demo's download of the released weights is
    off (a test of it passes its own environment and a loopback server)."""
    monkeypatch.setenv("MOMASK_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return shared_path("reference")


@pytest.fixture(scope="session")
def model_paths(reference_dir: Path) -> dict[str, str]:
    """The reference models as the operators' `checkpoints` and `clip` arguments."""
    return {"checkpoints": str(reference_dir / "checkpoints"), "clip": str(reference_dir / "clip" / "ViT-B-32.pt")}


@pytest.fixture(scope="session")
def cases(reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(reference_dir / "cases.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def reference_meta(reference_dir: Path) -> dict:
    return json.loads((reference_dir / "meta.json").read_text())


def assert_close_rel(got, want, tol: float = 1e-4) -> None:
    """Equal to `tol` of the reference's largest magnitude, the project's parity measure."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)
    assert err <= tol, f"relative error {err:.2e} > {tol:.0e}"

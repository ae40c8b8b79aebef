"""Parity with the official implementation: every recorded output of ../shared/reference, recomputed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core.replay import INPUTS, replay
from tests.conftest import ROOT, SHARED, assert_close_rel

OUTPUTS = ([k for k in json.loads((SHARED / "reference" / "meta.json").read_text())["shapes"] if k not in INPUTS]
           if (SHARED / "reference" / "meta.json").is_file() else ["(needs ../shared/reference)"])


def assert_matches(key: str, got: np.ndarray, want: np.ndarray) -> None:
    """Ids exactly; floats to 1e-4 of the reference's largest magnitude; foot contacts by 99% agreement."""
    got = np.asarray(got)
    assert got.shape == want.shape, f"{key}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "iub":
        differ = int((got != want).sum())
        assert differ == 0, f"{key}: {differ} of {want.size} ids differ"
        return
    if key == "process_file_features":
        agree = float((got[..., -4:] == want[..., -4:]).mean())
        assert agree >= 0.99, f"foot contacts agree on {agree:.1%}"
        got, want = got[..., :-4], want[..., :-4]
    assert_close_rel(got, want)


@pytest.fixture(scope="module")
def replayed(reference_dir: Path) -> dict[str, np.ndarray]:
    with pytest.warns(UserWarning, match="only the first 76"):  # the last prompt is over 77 tokens
        return replay(reference_dir)


def test_replay_gives_exactly_the_recorded_outputs(replayed, reference_meta):
    assert sorted(replayed) == sorted(k for k in reference_meta["shapes"] if k not in INPUTS)


@pytest.mark.parametrize("key", OUTPUTS)
def test_output_matches_official(replayed, cases, key):
    assert key in replayed, f"replay did not produce {key}"
    assert_matches(key, replayed[key], cases[key])


def test_cli_replay_reads_only_the_inputs(reference_dir, reference_meta, cases, tmp_path):
    """`python -m model_core replay` on a folder whose cases.npz holds the inputs alone."""
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("checkpoints", "clip", "source_motion.npy"):
        (ref / name).symlink_to(reference_dir / name)
    (ref / "meta.json").write_text(json.dumps(reference_meta))
    np.savez(ref / "cases.npz", **{k: cases[k] for k in INPUTS})
    out = tmp_path / "out.npz"
    done = subprocess.run([sys.executable, "-m", "model_core", "replay", str(ref), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as got:
        assert sorted(got.files) == sorted(k for k in reference_meta["shapes"] if k not in INPUTS)
        for key in got.files:
            assert_matches(key, got[key], cases[key])

"""`python -m model_core generate`: the arrays it writes, and a one-line error for bad input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core import GenerationSettings, MoMask
from model_core.cli import main
from tests.conftest import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture(scope="module")
def files(reference_dir: Path) -> list[str]:
    return ["--checkpoints", str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt")]


def test_generate_writes_joints_and_features(files, reference_dir, tmp_path):
    out = tmp_path / "walk.npz"
    done = _run("generate", "a person walks in a circle", "--seconds", "2", "--seed", "3", "--steps", "4",
                "--variations", "2", "--out", str(out), *files)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as data:
        joints, features = data["joints"], data["features"]
    assert joints.shape == (2, 40, 22, 3) and features.shape == (2, 40, 263)
    assert np.isfinite(joints).all() and not np.array_equal(joints[0], joints[1])
    assert [p.name for p in tmp_path.iterdir()] == ["walk.npz"]
    # the same prompt, seed and settings give the same motion through the API
    model = MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")
    same = model.generate("a person walks in a circle", 2.0, seed=3, variations=2, settings=GenerationSettings(steps=4))
    np.testing.assert_allclose(joints, same.joints, atol=1e-5)


def test_empty_prompt_is_one_line_on_stderr_and_writes_nothing(files, tmp_path):
    out = tmp_path / "x.npz"
    done = _run("generate", "", "--seconds", "2", "--out", str(out), *files)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "empty" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "match"), [
    (["--temperature", "0"], "temperature"),
    (["--seconds", "0"], "positive"),
    (["--steps", "0"], "steps"),
    (["--variations", "0"], "variations"),
    (["--topk", "1"], "topk"),
    (["--clip", "/nonexistent/ViT-B-32.pt"], "/nonexistent/ViT-B-32.pt"),
    (["--checkpoints", "/nonexistent/checkpoints"], "/nonexistent/checkpoints"),
])
def test_bad_arguments_give_one_line_and_no_file(files, tmp_path, capsys, args, match):
    out = tmp_path / "x.npz"
    code = main(["generate", "a person walks", "--out", str(out), *files, *args])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and match in err, err
    assert list(tmp_path.iterdir()) == []


def test_settings_and_flags_need_no_pytorch():
    """The Blender layer draws its panel and parses flags before PyTorch may be installed."""
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import model_core, model_core.cli\n"
        "args = model_core.cli.build_parser().parse_args(['generate', 'walk', '--out', 'x.npz',\n"
        "                                                 '--checkpoints', 'c', '--clip', 'k'])\n"
        "assert args.steps == model_core.GenerationSettings().steps == 18\n"
        "try:\n"
        "    model_core.MoMask\n"
        "except ImportError:\n"
        "    print('model needs torch')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "model needs torch"


def test_every_command_line_takes_every_sampling_flag(files, reference_dir, tmp_path):
    """generate, batch and the Blender bake parse the same flags (model_core.flags), each setting one
    field of GenerationSettings; a residual temperature from the command line reaches the model."""
    import argparse
    import dataclasses

    from model_core.batch.command import add_parser as add_batch_parser
    from model_core.cli import build_parser
    from momask_blender.bake import build_parser as build_bake_parser

    commands = argparse.ArgumentParser().add_subparsers()
    add_batch_parser(commands)
    batch = commands.choices["batch"]
    flags = {f"--{f.name.replace('_', '-')}": f.name for f in dataclasses.fields(GenerationSettings)}
    for name, parser in (("generate", build_parser()._subparsers._group_actions[0].choices["generate"]),
                         ("batch", batch), ("bake", build_bake_parser())):
        given = {a.option_strings[0]: a.dest for a in parser._actions if a.option_strings}
        assert {k: given.get(k) for k in flags} == flags, name
    out = tmp_path / "o.npz"
    assert main(["generate", "a person walks", "--seconds", "1.6", "--steps", "3", "--residual-temperature", "0.05",
                 "--out", str(out), *files]) == 0
    model = MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")
    want = model.generate("a person walks", 1.6, settings=GenerationSettings(steps=3, residual_temperature=0.05))
    with np.load(out) as data:
        np.testing.assert_allclose(data["joints"], want.joints, atol=1e-5)

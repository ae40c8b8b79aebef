"""`python -m model_core`: every bad argument is one line on stderr naming it, no traceback, no file."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from model_core.cli import main
from model_core.text.tokenizer import tokenize
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def files(reference_dir: Path) -> list[str]:
    return ["--checkpoints", str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt")]


def _fails(capsys, argv: list[str], match: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err
    return err


@pytest.mark.parametrize(("args", "match"), [
    (["--temperature", "inf"], "temperature must be a finite number"),
    (["--temperature", "1e300"], "temperature must be from"),
    (["--guidance", "1e300"], "guidance must be from -100 to 100"),
    (["--residual-guidance", "nan"], "residual_guidance must be a finite number"),
    (["--seed", str(2**64)], "seed must be a whole number from 0 to"),
    (["--seed", "-1"], "seed must be a whole number from 0 to"),
    (["--steps", "1000000000"], "steps must be a whole number from 1 to 1000"),
    (["--variations", "100000"], "variations must be a whole number from 1 to 64"),
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["--device", ""], "unknown device ''"),
    (["--device", "mps"], "unknown device 'mps'"),
    (["--device", "meta"], "unknown device 'meta'"),
    (["--seconds", "0.1"], "at most 600 s"),
    (["--seconds", "1e9"], "longer than the 600 s"),
    (["--seconds", "nan"], "seconds must be a finite number"),
])
def test_bad_values_are_one_line(files, tmp_path, capsys, args, match):
    _fails(capsys, ["generate", "a person walks", "--out", str(tmp_path / "o.npz"), *files, *args], match)
    assert list(tmp_path.iterdir()) == []


def test_a_short_length_names_the_shortest_and_the_longest(files, tmp_path, capsys):
    err = _fails(capsys, ["generate", "walk", "--seconds", "0.1", "--out", str(tmp_path / "o.npz"), *files],
                 "too short")
    assert "4 frames (0.2 s" in err and "196" not in err, err


@pytest.mark.parametrize("kind", ["folder", "empty", "read-only", "under a file", "proc", "pipe", "symlink"])
def test_bad_out_paths_are_refused_before_any_work(files, tmp_path, capsys, kind):
    """A pipe stands in for a device such as /dev/full (which the old code, run as root, replaced
    with an .npz): the same refusal, without risking the machine's device if it ever came back."""
    target = tmp_path / "target.npz"
    target.write_bytes(b"keep")
    out = {"folder": str(tmp_path), "empty": "", "read-only": str(target), "under a file": str(target / "o.npz"),
           "proc": "/proc/momask/o.npz", "pipe": str(tmp_path / "pipe.npz"), "symlink": str(tmp_path / "link.npz")}
    if kind == "read-only":
        target.chmod(0o444)
    if kind == "symlink":
        (tmp_path / "link.npz").symlink_to(target)
    if kind == "pipe":
        os.mkfifo(tmp_path / "pipe.npz")
    before = sorted(p.name for p in tmp_path.iterdir())
    _fails(capsys, ["generate", "a person walks", "--seconds", "2", "--out", out[kind], *files], "--out file")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and target.read_bytes() == b"keep"
    assert kind != "pipe" or stat.S_ISFIFO(os.lstat(tmp_path / "pipe.npz").st_mode)


def test_a_full_disk_leaves_no_part_file_and_no_traceback(files, tmp_path):
    out = tmp_path / "o.npz"
    out.write_bytes(b"previous")
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
              "from model_core.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "generate", "a person walks", "--seconds", "4", "--steps",
                           "2", "--out", str(out), *files], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "the previous file is kept" in done.stderr, done.stderr
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["o.npz"]


def test_replay_of_a_missing_folder_is_one_line(tmp_path, capsys):
    _fails(capsys, ["replay", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.npz")],
           "reference folder not found")
    assert list(tmp_path.iterdir()) == []


def test_replay_reports_the_file_it_wrote(reference_dir, tmp_path, capsys):
    out = tmp_path / "replayed"  # no .npz suffix: written exactly there, and reported as such
    assert main(["replay", str(reference_dir), "--out", str(out)]) == 0
    reported = capsys.readouterr().out
    assert f'"out": "{out}"' in reported and [p.name for p in tmp_path.iterdir()] == ["replayed"]
    with np.load(out) as data:
        assert "text_features" in data.files


def test_a_long_prompt_warning_quotes_only_its_start():
    prompt = "a person walks forward and then turns around " * 250  # about 11,000 characters
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokenize([prompt])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert len(message) < 300 and "11,250 characters" in message, message


def test_a_sequence_of_thousands_of_short_rows_is_refused_before_loading(files, tmp_path, capsys):
    sequence = tmp_path / "seq.txt"
    sequence.write_text("".join(f"0.2\tstep {i}\n" for i in range(3000)))
    _fails(capsys, ["generate", "--sequence", str(sequence), "--out", str(tmp_path / "o.npz"), *files],
           "more than 100 rows")
    assert [p.name for p in tmp_path.iterdir()] == ["seq.txt"]

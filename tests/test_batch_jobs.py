"""`python -m model_core batch`: the list, resuming, failures that do not stop the job, whole files only."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core import GenerationSettings, MoMask
from model_core.batch.items import Item, parse_list
from model_core.batch.runner import FAILED_LIST, LocalProducer, Outcome, run_batch
from model_core.inputs.paths import write_bytes
from tests.conftest import ROOT

FAST = GenerationSettings(steps=3)


class Quiet:
    def update(self, summary) -> None:
        pass

    def finish(self, summary) -> None:
        pass


@pytest.fixture(scope="module")
def model(reference_dir) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


def test_the_list_reads_items_and_names_its_bad_lines():
    items, bad = parse_list("# crowd\n2\ta person walks\n\n1.5\ta person waves\t7\nauto\tjumps\nx\tbad\n3\t\n"
                            "2\tok\tseven\n0.05\ttoo short\n", default_seed=3)
    assert items == [Item(2, "a person walks", 2.0, 3), Item(4, "a person waves", 1.5, 7), Item(5, "jumps", None, 3)]
    assert [(b.line, b.reason.split()[0]) for b in bad] == [(6, "seconds"), (7, "expected"), (8, "seed"),
                                                            (9, "seconds")]
    names = {item.name(FAST) for item in items}
    assert len(names) == 3 and items[0].name(FAST).startswith("a_person_walks-")
    assert items[0].name(FAST) != items[0].name(GenerationSettings(steps=4))  # other settings, other motion


def test_a_job_makes_each_item_once_and_lists_its_failures(model, tmp_path):
    items, bad = parse_list("2\ta person walks\t1\n1.2\ta person jumps\t2\n12\ta person runs\t3\n"
                            "0.4\ta person sits\t4\n1\t" + "a " * 3 + "\t5\n")
    items.append(Item(9, "   ", 2.0, 0))  # an empty prompt fails in the model, alone
    out = tmp_path / "out"
    summary = run_batch(items, out, LocalProducer(model, FAST, batch_size=3), FAST, bvh=True, bad_lines=bad,
                        progress=Quiet())
    assert (summary.made, summary.skipped, [f[0] for f in summary.failed]) == (5, 0, [9])
    walk = out / f"{items[0].name(FAST)}.npz"
    with np.load(walk) as data:
        want = model.generate("a person walks", 2.0, seed=1, settings=FAST)
        np.testing.assert_allclose(data["joints"], want.joints[0], atol=1e-5)
        assert str(data["prompt"]) == "a person walks" and int(data["seed"]) == 1
    with np.load(out / f"{items[2].name(FAST)}.npz") as data:
        assert data["joints"].shape == (240, 22, 3)  # past one model call: made window by window
    assert len(list(out.glob("*.bvh"))) == 5 and not list(out.glob(".*"))
    failed = (out / FAILED_LIST).read_text()
    assert "# line 9: prompt 0 is empty" in failed
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    again = run_batch(items[:5], out, LocalProducer(model, FAST), FAST, bvh=True, progress=Quiet())
    assert (again.made, again.skipped, again.failed) == (0, 5, [])
    assert all(p.stat().st_mtime_ns == stamps[p] for p in out.glob("*.npz")) and not (out / FAILED_LIST).exists()


def test_an_interrupted_job_leaves_whole_files_and_resumes(model, tmp_path):
    items, _ = parse_list("".join(f"1\ta person walks\t{seed}\n" for seed in range(4)))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".left_by_a_crash.npz.part").write_bytes(b"half")

    def crash_after_two(pending):
        for k, outcome in enumerate(LocalProducer(model, FAST, batch_size=1)(pending)):
            if k == 2:
                raise KeyboardInterrupt
            yield outcome

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, out, crash_after_two, FAST, progress=Quiet())
    assert len(list(out.glob("*.npz"))) == 2 and not list(out.glob(".*"))
    summary = run_batch(items, out, LocalProducer(model, FAST), FAST, bvh=True, progress=Quiet())
    assert (summary.made, summary.skipped) == (2, 2) and len(list(out.glob("*.bvh"))) == 4


def test_write_atomic_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "x.npz"
    with pytest.raises(TypeError):
        write_bytes(target, object())  # not bytes: the write fails half-way
    assert list(tmp_path.iterdir()) == []
    write_bytes(target, b"done")
    assert target.read_bytes() == b"done" and oct(target.stat().st_mode & 0o777) != "0o600"


def test_a_broken_answer_fails_its_item_only(tmp_path):
    def produce(pending):
        for item in pending:
            if item.seed == 1:
                yield Outcome(item, np.full((4, 22, 3), np.nan, np.float32), None, 20)
            else:
                yield Outcome(item, np.zeros((4, 22, 3), np.float32), None, 20)

    items, _ = parse_list("1\ta\t0\n1\tb\t1\n1\tc\t2\n")
    summary = run_batch(items, tmp_path, produce, FAST, progress=Quiet())
    assert summary.made == 2 and [f[0] for f in summary.failed] == [2] and "NaN" in summary.failed[0][2]


def test_the_command_line_reports_json_and_refuses_a_missing_model(reference_dir, tmp_path):
    listing = tmp_path / "list.tsv"
    listing.write_text("1\ta person walks\n")
    run = [sys.executable, "-m", "model_core", "batch", str(listing), "--out", str(tmp_path / "o"), "--steps", "3"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "--checkpoints" in done.stderr
    done = subprocess.run([*run, "--checkpoints", str(reference_dir / "checkpoints"), "--clip",
                           str(reference_dir / "clip" / "ViT-B-32.pt")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert '"made": 1' in done.stdout and "1/1" in done.stderr  # the summary, and the progress bar
    assert len(list(Path(tmp_path / "o").glob("*.npz"))) == 1


def test_only_files_left_by_a_killed_write_are_cleared(model, tmp_path):
    """A folder or a link whose name looks like a temporary file is the user's: kept, and the job runs."""
    out = tmp_path / "out"
    (out / ".kept.part").mkdir(parents=True)
    (out / ".link.part").symlink_to(tmp_path)
    (out / ".x.npz.abc123.part").write_bytes(b"half")
    items, _ = parse_list("1\ta person walks\t0\n")
    summary = run_batch(items, out, LocalProducer(model, FAST), FAST, progress=Quiet())
    assert summary.made == 1 and (out / ".kept.part").is_dir() and (out / ".link.part").is_symlink()
    assert not (out / ".x.npz.abc123.part").exists()

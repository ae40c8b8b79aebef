"""Directed generation through the model: every call that makes motion meets constraints."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core import GenerationSettings, ModelError, MoMask
from model_core.cli import main
from model_core.control import JOINT_NAMES, Constraint
from model_core.control.direct import errors
from model_core.control.targets import Targets
from model_core.generation.requests import Segment
from model_core.generation.timeline import edit_range, generate_sequence

FAST = GenerationSettings(steps=2)
CM = 0.01


@pytest.fixture(scope="module")
def model(reference_dir: Path) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


def _worst(motion, constraints) -> float:
    targets = Targets.from_constraints(constraints)
    return max(float(errors(motion.joints[i].astype(np.float64), targets).max()) for i in range(len(motion.lengths)))


def test_every_variation_meets_a_key_pose_and_a_path(model, cases):
    key = cases["source_joints"][40]
    cons = [Constraint(30, JOINT_NAMES[j], tuple(map(float, key[j]))) for j in range(22)]
    cons += [Constraint(f, "pelvis", (0.02 * f, 0.03 * f), "xz") for f in range(44, 80, 4)]
    motion = model.generate(["a person walks", "a person dances"], 4.0, variations=2, settings=FAST, constraints=cons)
    assert _worst(motion, cons) < 0.1 * CM
    assert not np.allclose(motion.joints[0], motion.joints[1])
    # features describe the directed joints (the rows a range edit would encode)
    from model_core.motion import joints_to_features
    np.testing.assert_allclose(motion.features[0, :79], joints_to_features(motion.joints[0].astype(np.float64))[0],
                               atol=1e-4)


def test_long_motions_and_sequences_meet_constraints_past_one_window(model):
    cons = [Constraint(10, "pelvis", (0.5, 0.5), "xz"), Constraint(230, "pelvis", (3.0, 1.0), "xz"),
            Constraint(231, "right_wrist", (3.2, 1.5, 1.3))]
    long = model.generate("a person walks", 12.0, settings=FAST, constraints=cons)
    sequence = generate_sequence(model, [Segment("a person walks", 120), Segment("a person runs", 140)],
                                 settings=FAST, constraints=cons)
    assert long.seams and sequence.seams
    assert _worst(long, cons) < 0.1 * CM and _worst(sequence, cons) < 0.1 * CM


def test_estimated_lengths_reach_the_last_constrained_frame(model):
    cons = [Constraint(150, "pelvis", (1.0, 1.0), "xz")]
    motion = model.generate("a person jumps", settings=FAST, seed=4, constraints=cons)
    assert motion.lengths[0] > 150 and _worst(motion, cons) < 0.1 * CM
    with pytest.raises(ModelError, match="frame 130 is outside the motion"):
        model.generate("a person jumps", 6.0, settings=FAST, constraints=[Constraint(130, "head", (0, 1, 0))])


def test_range_edits_meet_constraints_and_keep_every_other_frame(model, reference_dir):
    features = np.load(reference_dir / "source_motion.npy")[:196]
    cons = [Constraint(80, "pelvis", (1.0, 0.8, 0.5)), Constraint(90, "left_wrist", (0.2, 1.5, 0.4))]
    free = edit_range(model, features, 60, 100, "a person jumps", seed=2, settings=FAST)
    directed = edit_range(model, features, 60, 100, "a person jumps", seed=2, settings=FAST, constraints=cons)
    assert _worst(directed.motion, cons) < 0.1 * CM
    start, end = directed.frame_start, directed.frame_end
    kept = np.ones(196, bool)
    kept[start:end] = False
    np.testing.assert_array_equal(directed.motion.joints[0, kept], free.motion.joints[0, kept])
    with pytest.raises(ModelError, match="frame 30 is not regenerated"):
        edit_range(model, features, 60, 100, "a person jumps", constraints=[Constraint(30, "head", (0, 1, 0))])


def test_command_line_reads_a_constraints_file(reference_dir, tmp_path, capsys):
    files = ["--checkpoints", str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt")]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"constraints": [{"frame": 20, "joint": "left_wrist", "position": [0.3, 1.4, 0.6]}]}))
    out = tmp_path / "out.npz"
    assert main(["generate", "a person waves", "--seconds", "2", "--steps", "2", "--constraints", str(good),
                 "--out", str(out), *files]) == 0
    with np.load(out) as data:
        assert np.linalg.norm(data["joints"][0, 20, 20] - [0.3, 1.4, 0.6]) < 0.1 * CM
    bad = tmp_path / "bad.json"
    bad.write_text('{"constraints": [{"frame": 2, "joint": "pelvis", "position": [0, 0, 0], "axes": "xz"}]}')
    out.unlink()
    capsys.readouterr()
    assert main(["generate", "a person waves", "--seconds", "2", "--constraints", str(bad), "--out", str(out),
                 *files]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad.json: constraint 0" in err and "takes 2 numbers" in err
    assert not out.exists()

"""Long motions, prompt sequences, range edits and extensions (model_core.generation.timeline)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core import GenerationSettings, ModelError, MoMask
from model_core.generation.requests import Segment, parse_sequence
from model_core.generation.timeline import (
    edit_range,
    extend,
    generate_sequence,
    join_extension,
    seam_speeds,
    token_span,
)
from model_core.motion import recover_from_ric
from tests.conftest import shared_path

FAST = GenerationSettings(steps=6)


@pytest.fixture(scope="module")
def model(reference_dir) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


@pytest.fixture(scope="module")
def real_features() -> np.ndarray:
    return np.load(shared_path("motions", "humanml3d_000612.npy")).astype(np.float32)


def test_token_span_rounds_outward():
    assert token_span(40, 80) == (10, 21)
    assert token_span(41, 79) == (10, 20)
    assert token_span(0, 0) == (0, 1)
    with pytest.raises(ModelError, match="before its start"):
        token_span(10, 5)


def test_parse_sequence_reads_rows_and_names_bad_lines():
    segments = parse_sequence("# warm-up\n2.5\ta person walks\n\n4\tjumps twice\n")
    assert segments == [Segment("a person walks", 50), Segment("jumps twice", 80)]
    with pytest.raises(ModelError, match="line 2"):
        parse_sequence("2\twalks\nthree\truns\n")
    with pytest.raises(ModelError, match="line 1"):
        parse_sequence("0\twalks\n")
    with pytest.raises(ModelError, match="no 'seconds"):
        parse_sequence("\n# nothing\n")


def test_a_sequence_past_ten_minutes_in_all_is_refused_where_it_is_read():
    """Each row may be short enough; their sum is checked in parse_sequence (every door reads a sequence
    with it), not only once the model runs."""
    assert sum(s.frames for s in parse_sequence("300\twalks\n300\truns\n")) == 600 * 20
    with pytest.raises(ModelError, match=r"800.0 s in all, longer than the 600 s"):
        parse_sequence("400\twalks\n400\truns\n")


def test_long_generation_is_seamless(model):
    motion = model.generate("a person walks in a circle", seconds=30, seed=4, settings=FAST)
    assert motion.joints.shape == (1, 600, 22, 3) and motion.lengths == [600]
    assert len(motion.seams) >= 3
    report = seam_speeds(motion.joints[0], motion.seams)
    assert report["ratio"] <= 1.0, report


def test_prompt_sequence_follows_segments_and_is_seamless(model):
    segments = [Segment("a person walks", 60), Segment("a person jumps", 130), Segment("a person sits", 70)]
    motion = generate_sequence(model, segments, seed=0, variations=2, settings=FAST)
    assert motion.joints.shape == (2, 260, 22, 3)
    assert 60 in motion.seams and 188 in motion.seams  # where each segment starts, cut to whole tokens
    for joints in motion.joints:
        assert seam_speeds(joints, motion.seams)["ratio"] <= 1.0
    assert not np.array_equal(motion.tokens[0], motion.tokens[1])  # variations use their own seeds


def test_sequence_rejects_too_short_segments_and_too_long_totals(model):
    with pytest.raises(ModelError, match="at least 4 frames"):
        generate_sequence(model, [Segment("walk", 40), Segment("stop", 2)], settings=FAST)
    with pytest.raises(ModelError, match="longer than"):
        model.generate("walk", seconds=601, settings=FAST)


def test_edit_range_keeps_tokens_outside_the_range(model, real_features):
    features = real_features[:196]
    edited = edit_range(model, features, 61, 99, "a person jumps", seed=1, settings=FAST)
    assert (edited.frame_start, edited.frame_end) == (60, 100)
    original = model.encode(features).cpu().numpy()
    tokens = edited.motion.tokens
    outside = np.r_[0:15, 25:49]
    np.testing.assert_array_equal(tokens[0, outside], original[0, outside])
    assert not np.array_equal(tokens[0, 15:25], original[0, 15:25])


def test_edit_range_errors(model, real_features):
    with pytest.raises(ModelError, match="outside the motion"):
        edit_range(model, real_features[:100], 90, 120, "jump", settings=FAST)
    with pytest.raises(ModelError, match="whole motion"):
        edit_range(model, real_features[:40], 0, 39, "jump", settings=FAST)
    with pytest.raises(ModelError, match="more than one model call"):
        edit_range(model, real_features, 10, 20, "jump", settings=FAST)


def test_extending_real_motion_is_seamless(model, real_features):
    result = extend(model, real_features, "the person keeps walking", frames_after=60, seed=5, settings=FAST)
    assert result.frame_end - result.frame_start == 60
    joined = join_extension(real_features, result)
    assert joined.shape == (len(real_features) + 60, 263)
    np.testing.assert_array_equal(joined[: len(real_features) - 8], real_features[:-8])
    joints = recover_from_ric(joined, 22)
    assert seam_speeds(joints, [len(real_features) - 4, len(real_features)])["ratio"] <= 1.0


def test_extend_before_and_its_errors(model, real_features):
    result = extend(model, real_features, "a person stands up", frames_before=40, settings=FAST)
    assert (result.frame_start, result.frame_end) == (0, 40)
    joined = join_extension(real_features, result)
    np.testing.assert_array_equal(joined[48:], real_features[8:])
    with pytest.raises(ModelError, match="either before or after"):
        extend(model, real_features, "walk", frames_before=8, frames_after=8)
    with pytest.raises(ModelError, match="adds 4 to"):
        extend(model, real_features, "walk", frames_after=400)


def test_seam_speeds_flags_a_cut():
    t = np.linspace(0, 1, 100)[:, None, None]
    smooth = np.concatenate([t, np.zeros_like(t), np.zeros_like(t)], -1) * np.ones((1, 3, 1))
    cut = smooth.copy()
    cut[50:] += 0.5  # a jump of half a metre at frame 50
    assert seam_speeds(smooth, [50])["ratio"] <= 1.0 + 1e-9
    assert seam_speeds(cut, [50])["ratio"] > 5


def test_generation_seed_is_reproducible_across_windows(model):
    a = model.generate("walk", seconds=12, seed=9, settings=FAST).tokens
    b = model.generate("walk", seconds=12, seed=9, settings=FAST).tokens
    np.testing.assert_array_equal(a, b)
    assert torch.is_tensor(torch.as_tensor(a))


def test_range_edits_report_progress_and_can_be_cancelled(model, real_features):
    from model_core import Cancelled

    stages = []
    edit_range(model, real_features[:196], 60, 99, "a person jumps", settings=FAST,
               progress=lambda stage, fraction: stages.append((stage, fraction)))
    assert [s for s, _ in stages].count("base tokens") == FAST.steps and stages[-1][0] == "residual layers"

    def stop(stage, fraction):
        raise Cancelled()

    with pytest.raises(Cancelled):
        extend(model, real_features, "walk on", frames_after=40, settings=FAST, progress=stop)

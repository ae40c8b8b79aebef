"""Generation: other configurations than the reference's, seeds and batches, any prompt, any length."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from model_core import GenerationSettings, ModelError, MoMask
from model_core.generation.requests import frames_to_tokens, seconds_to_frames
from model_core.settings import MAX_FRAMES
from model_core.testing.random_weights import write_checkpoints, write_clip_state_dict

FAST = GenerationSettings(steps=2)


@pytest.fixture(scope="module")
def model(reference_dir: Path) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


# ----------------------------------------------------------------------------- other configurations


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """A plain fp16 CLIP state dict of another text width (64, one layer) than the reference's."""
    return write_clip_state_dict(tmp_path_factory.mktemp("clip") / "ViT-B-32.state_dict.pt", width=64, layers=1,
                                 heads=1, seed=4)


def test_other_configuration_loads_and_generates(tmp_path, small_clip):
    """Q=3, other codebook/widths/heads, an unshared residual model whose opt.txt has no n_heads."""
    checkpoints = write_checkpoints(
        tmp_path, "t2m", nq=3, nb_code=40, code_dim=24, width=32,
        mask=dict(latent_dim=60, ff_size=96, n_layers=1, n_heads=5),
        residual=dict(latent_dim=48, ff_size=80, n_layers=3, share_weight=False))
    model = MoMask.load(checkpoints, small_clip)
    assert model.residual_model.config.num_heads == 6
    assert model.residual_model.config.share_weight is False
    assert model.clip.config.width == 64
    motion = model.generate(["a person waves", "a person sits down"], frames=[40, 28], seed=1, variations=2,
                            settings=FAST)
    assert motion.joints.shape == (4, 40, 22, 3) and motion.features.shape == (4, 40, 263)
    assert motion.tokens.shape == (4, 10, 3) and motion.lengths == [40, 40, 28, 28]
    assert (motion.tokens[2:, 7:] == -1).all() and (motion.tokens[2:, :7] >= 0).all()
    assert (motion.tokens < 40).all() and np.isfinite(motion.joints).all()


def test_kit_folder_loads_and_generates_21_joints(tmp_path, reference_dir):
    checkpoints = write_checkpoints(
        tmp_path, "kit", nq=5, nb_code=48, code_dim=16, width=24,
        mask=dict(latent_dim=32, ff_size=64, n_layers=2, n_heads=2),
        residual=dict(latent_dim=32, ff_size=64, n_layers=1, n_heads=4, share_weight=True))
    model = MoMask.load(checkpoints, reference_dir / "clip" / "ViT-B-32.pt")
    motion = model.generate("a person jumps", seconds=1.0, seed=2, variations=2, settings=FAST)
    assert motion.joints.shape == (2, 20, 21, 3) and motion.features.shape == (2, 20, 251)
    assert motion.tokens.shape == (2, 5, 5) and np.isfinite(motion.joints).all()


# ----------------------------------------------------------------------------- seeds and batches


def test_same_seed_same_motion_and_other_seeds_differ(model):
    one = model.generate("a person runs forward", frames=96, seed=5, settings=FAST)
    again = model.generate("a person runs forward", frames=96, seed=5, settings=FAST)
    other = model.generate("a person runs forward", frames=96, seed=6, settings=FAST)
    np.testing.assert_array_equal(one.tokens, again.tokens)
    np.testing.assert_array_equal(one.joints, again.joints)
    assert (one.tokens != other.tokens).any()


def test_variation_k_is_the_single_generation_with_seed_plus_k(model):
    batch = model.generate("a person walks in a circle", frames=48, seed=10, variations=3, settings=FAST)
    for k in range(3):
        single = model.generate("a person walks in a circle", frames=48, seed=10 + k, settings=FAST)
        np.testing.assert_array_equal(batch.tokens[k], single.tokens[0])
        np.testing.assert_allclose(batch.joints[k], single.joints[0], atol=1e-4)


def test_a_sample_does_not_depend_on_a_longer_one_in_its_batch(model):
    """The shorter sample is padded in the batch; its own seed must still give its own motion."""
    batch = model.generate(["a person walks in a circle", "a person kicks"], frames=[48, 24], seed=10,
                           settings=FAST)
    single = model.generate("a person kicks", frames=24, seed=10, settings=FAST)
    assert batch.lengths[1] == 24 and (batch.tokens[1, 6:] == -1).all()
    np.testing.assert_array_equal(batch.tokens[1, :6], single.tokens[0])
    np.testing.assert_allclose(batch.joints[1, :24], single.joints[0], atol=1e-4)


def test_estimated_lengths_are_whole_tokens_within_one_call(model):
    motion = model.generate(["a person walks", "a person dances wildly", "jump"], seed=0, variations=2,
                            settings=FAST)
    for n, tokens in zip(motion.lengths, motion.tokens, strict=True):
        assert 4 <= n <= MAX_FRAMES and n % 4 == 0
        assert (tokens[: n // 4] >= 0).all() and (tokens[n // 4:] == -1).all()


# ----------------------------------------------------------------------------- any prompt, any length


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1).filter(lambda s: s.strip()))
@example("\x00")        # strip() keeps it, CLIP's text cleaning removes it
@example("\ufeff")
@example("&amp; \U0001f642 \u4e2d\u6587")
def test_any_prompt_gives_finite_joints_or_a_model_error(model, prompt):
    try:
        motion = model.generate(prompt, frames=8, seed=0, settings=FAST)
    except ModelError as err:
        assert "empty" in str(err)
        return
    assert motion.joints.shape == (1, 8, 22, 3) and np.isfinite(motion.joints).all()


@given(st.integers(-10_000, 10_000) | st.integers())
def test_frames_to_tokens_is_whole_tokens_or_a_model_error(frames):
    if 4 <= frames <= MAX_FRAMES:
        tokens = frames_to_tokens(frames)
        assert tokens == frames // 4 and 1 <= tokens <= 49
    else:
        with pytest.raises(ModelError, match=f"{frames} frames"):
            frames_to_tokens(frames)


@given(st.floats())
@example(1e308)         # seconds * 20 overflows to inf
@example(0.05)
def test_seconds_to_frames_is_a_whole_count_or_a_model_error(seconds):
    try:
        frames = seconds_to_frames(seconds)
    except ModelError:
        assert not (math.isfinite(seconds) and 0 < seconds < 1e6)
        return
    assert isinstance(frames, int) and seconds > 0
    assert frames == math.floor(seconds * 20 + 1e-6)


def test_every_way_of_generating_reports_the_same_stages(model):
    """One request alone, in a shared call, and a range edit report their passes on one scale."""
    from model_core.generation.batched import Sample, generate_batched

    def recorder():
        seen: list[tuple[str, float]] = []
        return seen, lambda stage, fraction: seen.append((stage, round(fraction, 6)))

    alone, report = recorder()
    model.generate("a person walks", frames=40, seed=2, settings=FAST, progress=report)
    shared, report = recorder()
    generate_batched(model, [Sample("a person walks", 40, 2), Sample("a person sits", 24, 5)], FAST, report)
    assert alone == shared
    assert [s for s, _ in alone] == ["text", "base tokens", "base tokens", "residual layers", "decode", "done"]
    assert [f for _, f in alone] == sorted(f for _, f in alone)
    edited, report = recorder()
    features = model.generate("a person walks", frames=40, settings=FAST).features[0]
    model.edit_range(features, 8, 23, "a person jumps", settings=FAST, progress=report)
    assert edited == alone[1:4]  # the token passes; the range edit decodes without a report

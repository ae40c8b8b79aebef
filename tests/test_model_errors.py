"""Bad input: one ModelError whose message names what is wrong, and nothing written or run."""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core import GenerationSettings, ModelError, MoMask, motion
from model_core.checkpoints.layout import find_models
from model_core.generation.requests import frames_to_tokens

RVQ = "rvq_nq4_dc32_nc64_noshare_qdp0.2"
MASK = "t2m_nlayer2_nhead4_ld64_ff128_cdp0.1_rvq4ns"
RES = "tres_nlayer2_ld64_ff128_rvq4ns_cdp0.2_sw"
FILES = {  # every file a load needs, relative to checkpoints/t2m
    "rvq opt": f"{RVQ}/opt.txt", "rvq weights": f"{RVQ}/model/net_best_fid.tar",
    "mean": f"{RVQ}/meta/mean.npy", "std": f"{RVQ}/meta/std.npy",
    "mask opt": f"{MASK}/opt.txt", "mask weights": f"{MASK}/model/latest.tar",
    "residual opt": f"{RES}/opt.txt", "residual weights": f"{RES}/model/net_best_fid.tar",
    "length estimator": "length_estimator/model/finest.tar",
}


@pytest.fixture(scope="module")
def model(reference_dir: Path) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


@pytest.fixture
def copy(reference_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the reference's checkpoints and CLIP, under tmp_path."""
    shutil.copytree(reference_dir / "checkpoints", tmp_path / "checkpoints", copy_function=shutil.copyfile)
    (tmp_path / "clip").mkdir()
    shutil.copyfile(reference_dir / "clip" / "ViT-B-32.pt", tmp_path / "clip" / "ViT-B-32.pt")
    for path in tmp_path.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def _load_fails(root: Path, match: str | None = None) -> str:
    """Load from a copy; it must raise ModelError matching `match` and leave the folder as it was."""
    before = _tree(root)
    with pytest.raises(ModelError, match=match) as caught:
        MoMask.load(root / "checkpoints", root / "clip" / "ViT-B-32.pt")
    assert _tree(root) == before
    return str(caught.value)


def _edit_state(path: Path, entry: str, change) -> None:
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint[entry])
    torch.save(checkpoint, path)


# ----------------------------------------------------------------------------- generation arguments


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t", [], ["a person walks", " "]])
def test_empty_prompt(model, prompt):
    with pytest.raises(ModelError, match="empty|no prompt"):
        model.generate(prompt, frames=40)


@pytest.mark.parametrize(("length", "match"), [
    (dict(seconds=0), "positive"), (dict(seconds=-2.0), "positive"), (dict(seconds=float("nan")), "finite"),
    (dict(seconds=0.1), "2 frames"), (dict(frames=3), "3 frames"), (dict(frames=0), "0 frames"),
    (dict(frames=-40), "-40 frames"),
    (dict(frames=40.0), "whole number"), (dict(frames=[40, 40]), "2 lengths given for 1 prompts"),
    (dict(seconds=2, frames=40), "not both"),
])
def test_bad_length(model, length, match):
    with pytest.raises(ModelError, match=match):
        model.generate("a person walks", **length)


@pytest.mark.parametrize("frames", [197, 200, 10_000])
def test_one_model_call_makes_at_most_196_frames(frames):
    """Longer motions are made window by window on top of this limit (see timeline)."""
    with pytest.raises(ModelError, match=f"{frames} frames is out of range.*196"):
        frames_to_tokens(frames)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(variations=0), "variations"), (dict(variations=-1), "variations"),
    (dict(settings=GenerationSettings(steps=0)), "steps"),
    (dict(settings=GenerationSettings(topk=1.0)), "topk"),
    (dict(settings=GenerationSettings(topk=-0.1)), "topk"),
    (dict(settings=GenerationSettings(temperature=0)), "temperature"),
    (dict(settings=GenerationSettings(residual_temperature=-1)), "residual_temperature"),
    (dict(settings=GenerationSettings(guidance=float("inf"))), "guidance"),
])
def test_bad_settings(model, kwargs, match):
    with pytest.raises(ModelError, match=match):
        model.generate("a person walks", frames=40, **kwargs)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(model, value):
    features = np.zeros((2, 40, 263), np.float32)
    features[1, 7, 100] = value
    with pytest.raises(ModelError, match="NaN or infinite"):
        model.encode(features)
    with pytest.raises(ModelError, match="features contains 1 NaN/inf"):
        motion.recover_from_ric(features, 22)


def test_non_finite_joints_are_refused(cases):
    joints = cases["source_joints"][:20].copy()
    joints[3, 5, 1] = np.nan
    with pytest.raises(ModelError, match=r"joints contains 1 NaN/inf values \(first at index \(3, 5, 1\)\)"):
        motion.joints_to_features(joints)


def test_motion_and_skeleton_errors_are_model_errors(cases):
    joints = cases["source_joints"][:5].copy()
    with pytest.raises(ModelError, match="unknown dataset 'smpl'"):
        motion.joints_to_features(joints, "smpl")
    joints[2, 4] = joints[2, 1]  # left knee on the left hip
    with pytest.raises(ModelError, match="joint 4 coincides with its parent 1 at frame 2"):
        motion.joints_to_features(joints)


def test_wrong_feature_shapes_are_refused(model):
    with pytest.raises(ModelError, match=r"\(frames, 263\).*found \(1, 40, 251\)"):
        model.encode(np.zeros((40, 251), np.float32))
    with pytest.raises(ModelError, match="at least 4 frames"):
        model.encode(np.zeros((3, 263), np.float32))


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", FILES)
def test_missing_file_names_the_expected_path(copy, name):
    path = copy / "checkpoints" / "t2m" / FILES[name]
    path.unlink()
    message = _load_fails(copy)
    assert str(path) in message, message


def test_missing_clip_file_names_the_expected_path(copy):
    path = copy / "clip" / "ViT-B-32.pt"
    path.unlink()
    message = _load_fails(copy)
    assert str(path) in message, message


def test_missing_checkpoint_folder(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path / "nowhere")):
        find_models(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="t2m or .*kit"):
        find_models(tmp_path)


@pytest.mark.parametrize("name", ["rvq weights", "mask weights", "residual weights", "length estimator", "mean"])
def test_truncated_file_is_named(copy, name):
    path = copy / "checkpoints" / "t2m" / FILES[name]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert str(path) in _load_fails(copy)


def test_random_bytes_checkpoint_is_named(copy):
    path = copy / "checkpoints" / "t2m" / FILES["mask weights"]
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert str(path) in _load_fails(copy, "not a readable checkpoint|refused")


@pytest.mark.parametrize("content", ["random", "truncated"])
def test_corrupted_clip_file_is_named(copy, content):
    path = copy / "clip" / "ViT-B-32.pt"
    data = path.read_bytes()
    path.write_bytes(np.random.default_rng(1).bytes(4096) if content == "random" else data[: len(data) // 3])
    assert str(path) in _load_fails(copy)


def test_wrong_shape_names_key_expected_and_found(copy):
    path = copy / "checkpoints" / "t2m" / FILES["rvq weights"]
    _edit_state(path, "vq_model", lambda s: s.__setitem__("encoder.model.0.weight", torch.zeros(48, 263, 2)))
    message = _load_fails(copy, "encoder.model.0.weight")
    assert str(path) in message and "(48, 263, 2)" in message and "(48, 263, 3)" in message


def test_missing_key_is_named(copy):
    path = copy / "checkpoints" / "t2m" / FILES["mask weights"]
    _edit_state(path, "t2m_transformer", lambda s: s.pop("cond_emb.weight"))
    message = _load_fails(copy, "missing keys")
    assert str(path) in message and "cond_emb.weight" in message


def test_unexpected_key_is_named(copy):
    path = copy / "checkpoints" / "t2m" / FILES["residual weights"]
    _edit_state(path, "res_transformer", lambda s: s.__setitem__("extra.weight", torch.zeros(3)))
    message = _load_fails(copy, "unexpected keys")
    assert str(path) in message and "extra.weight" in message


def test_missing_entry_is_named(copy):
    path = copy / "checkpoints" / "t2m" / FILES["length estimator"]
    torch.save({"epoch": 1}, path)
    assert str(path) in _load_fails(copy, "'estimator'")


class _RunsCode:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_pickle_that_would_run_code_is_refused(copy):
    sentinel = copy / "SENTINEL"
    path = copy / "checkpoints" / "t2m" / FILES["rvq weights"]
    checkpoint = torch.load(path, weights_only=True)
    torch.save(dict(checkpoint, scheduler=_RunsCode(f"touch {sentinel}")), path)
    message = _load_fails(copy, "refused|not a readable")
    assert str(path) in message and not sentinel.exists()


def test_raw_pickle_calling_exec_is_refused(copy):
    sentinel = copy / "SENTINEL"
    path = copy / "checkpoints" / "t2m" / FILES["mask weights"]
    code = f"open({str(sentinel)!r}, 'w').close()"
    path.write_bytes(b"\x80\x02cbuiltins\nexec\n" + pickle.dumps(code, 2)[2:-1] + b"\x85R.")
    assert str(path) in _load_fails(copy)
    assert not sentinel.exists()


def test_malformed_option_line_names_file_and_line(copy):
    path = copy / "checkpoints" / "t2m" / FILES["mask opt"]
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:5], "this line has no colon", *lines[5:]]) + "\n")
    assert str(path) in _load_fails(copy, r"line 6 is not 'key: value'")


def test_options_contradicting_the_weights_are_named(copy):
    path = copy / "checkpoints" / "t2m" / FILES["mask opt"]
    path.write_text(path.read_text().replace("latent_dim: 64", "latent_dim: 96"))
    message = _load_fails(copy, "expected")
    assert str(copy / "checkpoints" / "t2m" / FILES["mask weights"]) in message


def test_a_checkpoint_in_the_legacy_format_loads(copy, model):
    """torch.save's pre-1.6 format (no zip) cannot be memory-mapped: it is read whole, not refused."""
    path = copy / "checkpoints" / "t2m" / FILES["rvq weights"]
    torch.save(torch.load(path, weights_only=True), path, _use_new_zipfile_serialization=False)
    legacy = MoMask.load(copy / "checkpoints", copy / "clip" / "ViT-B-32.pt")
    settings = GenerationSettings(steps=2)
    np.testing.assert_array_equal(legacy.generate("a person walks", 1.0, settings=settings).joints,
                                  model.generate("a person walks", 1.0, settings=settings).joints)

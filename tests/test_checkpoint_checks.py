"""Checkpoints that load but would give nonsense or exhaust the machine: refused with the file named,
before anything is built (options against the weights' shapes, every tensor finite, statistics)."""
from __future__ import annotations

import os
import re
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core import ModelError, MoMask

T2M = Path("checkpoints") / "t2m"
RVQ = T2M / "rvq_nq4_dc32_nc64_noshare_qdp0.2"
MASK = T2M / "t2m_nlayer2_nhead4_ld64_ff128_cdp0.1_rvq4ns"
RES = T2M / "tres_nlayer2_ld64_ff128_rvq4ns_cdp0.2_sw"
LENGTH = T2M / "length_estimator" / "model" / "finest.tar"


@pytest.fixture
def copy(reference_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(reference_dir / "checkpoints", tmp_path / "checkpoints", copy_function=shutil.copyfile)
    (tmp_path / "clip").mkdir()
    shutil.copyfile(reference_dir / "clip" / "ViT-B-32.state_dict.pt", tmp_path / "clip" / "ViT-B-32.pt")
    return tmp_path


def _load(root: Path) -> MoMask:
    return MoMask.load(root / "checkpoints", root / "clip" / "ViT-B-32.pt")


def _edit(path: Path, entry: str | None, change) -> None:
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint[entry] if entry else checkpoint)
    torch.save(checkpoint, path)


def _set_option(path: Path, key: str, value: str) -> None:
    text = path.read_text()
    text, count = re.subn(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.M)
    path.write_text(text if count else text.replace("-------------- End", f"{key}: {value}\n-------------- End"))


@pytest.mark.parametrize(("folder", "entry", "key", "network", "length"), [
    (MASK / "model" / "latest.tar", "t2m_transformer", "seqTransEncoder.layers.0.linear1.weight",
     "the masked transformer", 40),
    (LENGTH, "estimator", "output.0.weight", "the length estimator", None),
    (RVQ / "model" / "net_best_fid.tar", "vq_model", "decoder.model.0.weight", "the motion decoder", 40),
])
def test_nan_weights_are_named_by_their_file_not_a_traceback(copy, folder, entry, key, network, length):
    """Each network's output is checked (weights are not read whole at load: that would double it)."""
    path = copy / folder
    _edit(path, entry, lambda state: state[key].view(-1).__setitem__(0, float("nan")))
    model = _load(copy)
    with pytest.raises(ModelError, match=f"{network} produced NaN or infinite values") as caught:
        model.generate("a person walks", frames=length)
    assert str(path) in str(caught.value)


def test_all_inf_residual_weights_give_no_motion(copy):
    path = copy / RES / "model" / "net_best_fid.tar"
    _edit(path, "res_transformer", lambda state: [v.fill_(float("inf")) for v in state.values()
                                                  if v.is_floating_point()])
    with pytest.raises(ModelError, match="the residual transformer produced NaN") as caught:
        _load(copy).generate("a person walks", frames=40)
    assert str(path) in str(caught.value)


def test_nan_clip_weights_are_named(copy):
    path = copy / "clip" / "ViT-B-32.pt"
    _edit(path, None, lambda state: state["ln_final.weight"].fill_(float("nan")))
    with pytest.raises(ModelError, match="CLIP's text tower produced NaN") as caught:
        _load(copy).generate("a person walks", frames=40)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("folder", "key", "value", "match"), [
    (MASK, "n_heads", "0", "n_heads must be from 1 to latent_dim"),
    (MASK, "n_heads", "four", "n_heads"),
    (MASK, "n_layers", "100000", "hold 2 encoder layers, expected 100000 as opt.txt's n_layers"),
    (MASK, "latent_dim", "100000000000", "expected 100000000000 as opt.txt's latent_dim"),
    (RES, "ff_size", "1000000", "expected 1000000 as opt.txt's ff_size"),
    (RVQ, "num_quantizers", "100000", "hold 4 codebooks, expected 100000"),
    (RVQ, "width", "100000000000", "expected 100000000000 as opt.txt's width"),
    (RVQ, "depth", "100000", "expected 100000 as opt.txt's depth"),
    (RVQ, "dilation_growth_rate", "1000000", "dilation_growth_rate 1000000"),
])
def test_options_are_checked_against_the_weights_before_building(copy, folder, key, value, match):
    """An opt.txt asking for 100000 layers or a width of 1e11 is refused at once: the process's memory
    is capped at 3 GB here, far below what building them would take."""
    _set_option(copy / folder / "opt.txt", key, value)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (max(_address_space() + (3 << 30), 1 << 33), hard))
    try:
        with pytest.raises(ModelError, match=match):
            _load(copy)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    """This process's mapped address space now (VmSize), in bytes."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize(("name", "value", "match"), [
    ("mean.npy", np.full(263, 1e38, np.float32), "beyond"),
    ("std.npy", np.full(263, 1e38, np.float32), "beyond"),
    ("mean.npy", np.array(["0.5"] * 263), "text"),
    ("mean.npy", np.zeros(263, np.complex64), "complex"),
    ("mean.npy", np.ones(263, bool), "booleans"),
])
def test_bad_feature_statistics_are_refused(copy, name, value, match):
    path = copy / RVQ / "meta" / name
    np.save(path, value)
    with pytest.raises(ModelError, match=match) as caught:
        _load(copy)
    assert str(path) in str(caught.value)


class _RunsCode:
    def __reduce__(self):
        return os.system, ("true",)


def test_a_refused_pickle_never_advises_loading_it_unsafely(copy):
    path = copy / MASK / "model" / "latest.tar"
    torch.save({"t2m_transformer": {}, "extra": _RunsCode()}, path)
    with pytest.raises(ModelError) as caught:
        _load(copy)
    message = str(caught.value)
    assert str(path) in message and "refused" in message and "system" in message
    assert "weights_only" not in message and "\x1b" not in message and "\n" not in message, message

"""Random MoMask weights in the official on-disk layout, as the official trainers save them.

Three uses, one writer: tests build other model configurations (`write_checkpoints`), the
benchmarks load weights of the released shapes (`released_shapes_folder`: they cost what the
real ones cost), and the demo runs end to end without the released files (`demo_weights`:
small, with a mean that is a person standing, so the random motion is a jittering figure).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoints.layout import DATASETS
from ..motion.features import joints_to_features
from ..motion.skeleton import T2M, T2M_UNIFORM_OFFSETS
from ..networks.length_estimator import LengthEstimator
from ..networks.rvq import RVQVAE, RVQConfig
from ..networks.transformer import MaskTransformer, ResidualTransformer, TransformerConfig
from ..text.clip import ClipTextConfig, ClipTextEncoder

BANNER, END = "------------ Options -------------", "-------------- End ----------------"
# file and state-dict entry of each model, as the official trainers save them
FILES = {"rvq": ("model/net_best_fid.tar", "vq_model"), "mask_transformer": ("model/latest.tar", "t2m_transformer"),
         "residual_transformer": ("model/net_best_fid.tar", "res_transformer")}
DEMO_VERSION = "2"  # bump when demo_weights writes something else


def random_state(shapes: Mapping[str, Sequence[int]], generator: torch.Generator, scale: float = 0.02, *,
                 trained_like: bool = True) -> dict[str, torch.Tensor]:
    """Normal weights of the given shapes. `trained_like`: layer-norm gains one and 1-d biases zero,
    as trained nets have (activations of a realistic size, for benchmarks); otherwise everything
    small and random, which keeps a tiny model's sampling spread out (tests, the demo)."""
    state = {}
    for key, shape in shapes.items():
        if not trained_like:
            state[key] = torch.randn(tuple(shape), generator=generator) * scale
        elif key.endswith("weight") and (key.endswith(("norm1.weight", "norm2.weight", "LayerNorm.weight"))
                                         or ".ln_" in key):
            state[key] = torch.ones(shape)
        elif key.endswith("bias") and len(shape) == 1:
            state[key] = torch.zeros(shape)
        else:
            state[key] = torch.randn(tuple(shape), generator=generator) * scale
    return state


def shapes_of(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def write_options(folder: Path, options: Mapping) -> None:
    """opt.txt as the official trainers write it: sorted `key: value` lines between two banners."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}: {v}" for k, v in sorted(options.items())]
    (folder / "opt.txt").write_text("\n".join([BANNER, *lines, END]) + "\n")


def save(path: Path, entry: str, state: dict, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({entry: state, **extra}, path)


def write_checkpoints(root: Path, dataset: str = "t2m", *, nq: int, nb_code: int, code_dim: int, width: int,
                      mask: Mapping, residual: Mapping, clip_dim: int = 512, mean: np.ndarray | None = None,
                      std: np.ndarray | None = None, names: tuple[str, str, str] | None = None, seed: int = 0,
                      scale: float = 0.1) -> Path:
    """`root/checkpoints/<dataset>/` with random weights of the given sizes; returns `root/checkpoints`.

    `mask` and `residual` are the transformers' options (latent_dim, ff_size, n_layers, and
    n_heads and share_weight when given: a residual opt.txt without n_heads is a released case).
    """
    feature_dim = DATASETS[dataset][0]
    base = root / "checkpoints" / dataset
    rvq_name, mask_name, res_name = names or (f"rvq_nq{nq}_dc{code_dim}_nc{nb_code}_noshare_qdp0.2", "t2m_custom",
                                              "tres_custom")
    gen = torch.Generator().manual_seed(seed)
    write_options(base / rvq_name, dict(
        dataset_name=dataset, name=rvq_name, code_dim=code_dim, output_emb_width=code_dim, nb_code=nb_code,
        num_quantizers=nq, width=width, depth=1, down_t=2, stride_t=2, dilation_growth_rate=2, vq_act="relu",
        vq_norm=None, shared_codebook=False, quantize_dropout_prob=0.2, lr_scheduler=[150000, 250000], mu=0.99))
    rvq = RVQVAE(RVQConfig(input_dim=feature_dim, nb_code=nb_code, code_dim=code_dim, num_quantizers=nq,
                           width=width, depth=1, down_t=2, stride_t=2, dilation_growth_rate=2))
    def weights(module: nn.Module) -> dict[str, torch.Tensor]:
        return random_state(shapes_of(module), gen, scale, trained_like=False)

    save(base / rvq_name / FILES["rvq"][0], FILES["rvq"][1], weights(rvq),
         opt_vq_model={"state": {}, "param_groups": []}, scheduler={"last_epoch": 3}, ep=3, total_it=300)
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 0.1, feature_dim) if mean is None else mean
    std = rng.uniform(0.05, 0.2, feature_dim) if std is None else std
    (base / rvq_name / "meta").mkdir()
    np.save(base / rvq_name / "meta" / "mean.npy", np.asarray(mean, np.float32))
    np.save(base / rvq_name / "meta" / "std.npy", np.asarray(std, np.float32))
    for name, opts, cls, kind in ((mask_name, mask, MaskTransformer, "mask_transformer"),
                                  (res_name, residual, ResidualTransformer, "residual_transformer")):
        write_options(base / name, dict(opts, name=name, vq_name=rvq_name, dataset_name=dataset, dropout=0.2,
                                        cond_drop_prob=0.1, max_motion_length=196, unit_length=4))
        config = TransformerConfig(num_tokens=nb_code, code_dim=code_dim, latent_dim=opts["latent_dim"],
                                   ff_size=opts["ff_size"], num_layers=opts["n_layers"],
                                   num_heads=opts.get("n_heads", 6), num_quantizers=nq, clip_dim=clip_dim,
                                   share_weight=opts.get("share_weight", False))
        file, entry = FILES[kind]
        save(base / name / file, entry, weights(cls(config)), ep=7, total_it=700, scheduler={"last_epoch": 7})
    save(base / "length_estimator" / "model" / "finest.tar", "estimator",
         weights(LengthEstimator(clip_dim, 50)), epoch=11, niter=4321)
    return root / "checkpoints"


def write_clip_state_dict(path: Path, *, width: int = 64, layers: int = 1, heads: int = 1, embed_dim: int = 512,
                          seed: int = 0) -> Path:
    """A small CLIP text tower as a plain fp16 state dict (OpenAI's key names)."""
    config = ClipTextConfig(vocab_size=49408, context_length=77, width=width, layers=layers, heads=heads,
                            embed_dim=embed_dim)
    gen = torch.Generator().manual_seed(seed)
    state = random_state(shapes_of(ClipTextEncoder(config)), gen, scale=0.02, trained_like=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in state.items()}, path)
    return path


# ----------------------------------------------------------------------------- released shapes


def _module_tree(state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Nested modules whose parameters carry exactly the dotted names of `state`."""
    root = nn.Module()
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for name in path:
            if not hasattr(node, name):
                node.add_module(name, nn.Module())
            node = getattr(node, name)
        node.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
    return root


def write_torchscript_clip(shapes: Mapping[str, list], path: Path, seed: int = 0) -> None:
    """A TorchScript archive of fp16 tensors with OpenAI's ViT-B/32 names and shapes, like its file."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {k: shape for k, (shape, _dtype) in shapes.items()
               if k not in ("input_resolution", "context_length", "vocab_size")}
    state = {k: v.half() for k, v in random_state(tensors, gen).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(_module_tree(state).eval()).save(str(path))


def _opt_name(opt_file: Path) -> str:
    for line in opt_file.read_text().splitlines():
        if line.startswith("name: "):
            return line.split(": ", 1)[1].strip()
    raise ValueError(f"{opt_file}: no name line")


def released_shapes_folder(cache: Path, shared: Path, seed: int = 0) -> Path:
    """`cache/released` holding checkpoints/t2m/... and clip/ViT-B-32.pt at the released shapes
    (made once). Shapes and options come from `shared/official` (shapes.json, the whole
    ViT-B/32's clip_vit_b32_shapes.json, the released *.opt.txt files)."""
    out = cache / "released"
    if (out / ".complete").exists():
        return out
    official = shared / "official"
    shapes = json.loads((official / "shapes.json").read_text())
    if out.exists():
        shutil.rmtree(out)
    dataset = out / "checkpoints" / "t2m"
    gen = torch.Generator().manual_seed(seed)
    for opt_file in sorted(official.glob("*.opt.txt")):
        name = _opt_name(opt_file)
        kind = ("rvq" if name.startswith("rvq") else "residual_transformer" if name.startswith("tres")
                else "mask_transformer")
        (dataset / name).mkdir(parents=True)
        shutil.copy(opt_file, dataset / name / "opt.txt")
        file, entry = FILES[kind]
        save(dataset / name / file, entry, random_state(shapes[kind], gen), ep=0, total_it=0)
        if kind == "rvq":
            width = shapes["rvq"]["decoder.model.6.bias"][0]
            (dataset / name / "meta").mkdir()
            np.save(dataset / name / "meta" / "mean.npy", np.zeros(width, np.float32))
            np.save(dataset / name / "meta" / "std.npy", np.ones(width, np.float32))
    save(dataset / "length_estimator" / "model" / "finest.tar", "estimator",
         random_state(shapes["length_estimator"], gen), epoch=0, niter=0)
    write_torchscript_clip(json.loads((official / "clip_vit_b32_shapes.json").read_text()),
                           out / "clip" / "ViT-B-32.pt", seed)
    (out / ".complete").touch()
    return out


# ----------------------------------------------------------------------------- the demo's small weights


def standing_features() -> np.ndarray:
    """One 263-d feature frame of a person standing still, arms hanging: the uniform skeleton's rest
    offsets (the HumanML3D raw offsets point the arms down) with the head turned up."""
    offsets = np.array(T2M_UNIFORM_OFFSETS, np.float64)
    offsets[15] = (0.0, np.linalg.norm(offsets[15]), 0.0)  # the head's offset points forward in the raw table
    pose = np.zeros((T2M.joints_num, 3))
    for j in range(1, T2M.joints_num):
        pose[j] = pose[T2M.parents[j]] + offsets[j]
    pose[:, 1] -= pose[:, 1].min()
    features, _ = joints_to_features(np.repeat(pose[None], 3, axis=0).astype(np.float32), "t2m")
    return features[0]


def demo_weights(cache: Path, seed: int = 0) -> tuple[Path, Path]:
    """Small random weights for the demo in `cache` (made once): (checkpoints folder, CLIP file).

    Official folder names for a 6-layer RVQ; the mean is a person standing and the deviations
    small (root drift smaller still), so the random motion is a figure jittering in place.
    """
    done, checkpoints = cache / ".complete", cache / "checkpoints"
    clip = cache / "clip" / "RANDOM_clip_text.state_dict.pt"
    if done.is_file() and done.read_text().strip() == DEMO_VERSION:
        return checkpoints, clip
    if cache.exists():
        shutil.rmtree(cache)
    nq, nb_code, code_dim, latent, ff, layers, heads = 6, 64, 32, 64, 128, 2, 4
    names = (f"rvq_nq{nq}_dc{code_dim}_nc{nb_code}_noshare_qdp0.2",
             f"t2m_nlayer{layers}_nhead{heads}_ld{latent}_ff{ff}_cdp0.1_rvq{nq}ns",
             f"tres_nlayer{layers}_ld{latent}_ff{ff}_rvq{nq}ns_cdp0.2_sw")
    std = np.full(263, 0.02, np.float32)
    std[:4] = 0.005  # root turn, velocity and height: a little drift, no flying
    transformer = dict(latent_dim=latent, ff_size=ff, n_layers=layers, n_heads=heads)
    write_checkpoints(cache, nq=nq, nb_code=nb_code, code_dim=code_dim, width=64, mask=transformer,
                      residual=dict(transformer, share_weight=True), mean=standing_features(), std=std, names=names,
                      seed=seed)
    write_clip_state_dict(clip, seed=seed)
    done.write_text(DEMO_VERSION + "\n")
    return checkpoints, clip

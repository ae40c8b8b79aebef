"""Random-weight model files at the released shapes, in the official layout, for benchmarks.

Weights of the released shapes cost what the real ones cost to load, hold and run, so speed
and memory can be measured without the real files. Shapes come from ../shared/official:
`shapes.json` (the four MoMask files), `clip_vit_b32_shapes.json` (OpenAI's whole ViT-B/32,
vision tower included, fp16, written as a TorchScript archive like OpenAI's file) and the
released `*.opt.txt` files. The files are written once into a cache folder outside git.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / ".cache" / "bench"

# file name and state-dict entry of each model, as the official trainers save them
_FILES = {
    "rvq": ("model/net_best_fid.tar", "vq_model"),
    "mask_transformer": ("model/latest.tar", "t2m_transformer"),
    "residual_transformer": ("model/net_best_fid.tar", "res_transformer"),
}


def _random_state(shapes: dict[str, list[int]], generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for key, shape in shapes.items():
        is_norm = key.endswith(("norm1.weight", "norm2.weight", "LayerNorm.weight")) or ".ln_" in key
        if is_norm and key.endswith("weight"):
            state[key] = torch.ones(shape)
        elif key.endswith("bias") and len(shape) == 1:
            state[key] = torch.zeros(shape)
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    return state


def _module_tree(state: dict[str, torch.Tensor]) -> nn.Module:
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


def write_clip(shapes: dict[str, list], path: Path, seed: int = 0) -> None:
    """A TorchScript archive holding fp16 tensors of OpenAI's ViT-B/32 names and shapes."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, _dtype) in shapes.items():
        if key in ("input_resolution", "context_length", "vocab_size"):
            continue
        tensor = _random_state({key: shape}, generator)[key]
        state[key] = tensor.half()
    scripted = torch.jit.script(_module_tree(state).eval())
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path))


def _opt_name(opt_file: Path) -> str:
    for line in opt_file.read_text().splitlines():
        if line.startswith("name: "):
            return line.split(": ", 1)[1].strip()
    raise ValueError(f"{opt_file}: no name line")


def released_shapes_folder(cache: Path = CACHE, shared: Path = SHARED, seed: int = 0) -> Path:
    """`cache/released` with checkpoints/t2m/... and clip/ViT-B-32.pt at the released shapes (made once)."""
    out = cache / "released"
    done = out / ".complete"
    if done.exists():
        return out
    official = shared / "official"
    shapes = json.loads((official / "shapes.json").read_text())
    if out.exists():
        shutil.rmtree(out)
    dataset = out / "checkpoints" / "t2m"
    generator = torch.Generator().manual_seed(seed)
    for opt_file in sorted(official.glob("*.opt.txt")):
        name = _opt_name(opt_file)
        kind = ("rvq" if name.startswith("rvq") else "residual_transformer" if name.startswith("tres")
                else "mask_transformer")
        folder = dataset / name
        (folder / "model").mkdir(parents=True)
        shutil.copy(opt_file, folder / "opt.txt")
        file_name, entry = _FILES[kind]
        torch.save({entry: _random_state(shapes[kind], generator), "ep": 0, "total_it": 0}, folder / file_name)
        if kind == "rvq":
            width = shapes["rvq"]["decoder.model.6.bias"][0]
            (folder / "meta").mkdir()
            np.save(folder / "meta" / "mean.npy", np.zeros(width, np.float32))
            np.save(folder / "meta" / "std.npy", np.ones(width, np.float32))
    estimator = dataset / "length_estimator" / "model"
    estimator.mkdir(parents=True)
    torch.save({"estimator": _random_state(shapes["length_estimator"], generator), "epoch": 0, "niter": 0},
               estimator / "finest.tar")
    write_clip(json.loads((official / "clip_vit_b32_shapes.json").read_text()), out / "clip" / "ViT-B-32.pt")
    done.touch()
    return out


if __name__ == "__main__":
    print(released_shapes_folder())

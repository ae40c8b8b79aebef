"""CLIP's text tower alone, loaded from OpenAI's file (TorchScript) or a plain state dict.

MoMask only needs `encode_text`, so the vision tower (two thirds of ViT-B/32) is never built
and its tensors are never read. Parameter names are OpenAI's, so the released file's text keys
load as they are; every hyperparameter is read off the checkpoint's shapes, like OpenAI's
`build_model`. Weights are run in fp32, as the official pipeline does on the CPU.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.weights import read_state
from ..errors import ModelError
from ..networks import layers
from .tokenizer import ClipTokenizer
from .torchscript import TorchScriptArchive, is_torchscript_archive

# Keys of a full CLIP checkpoint that the text tower does not use.
_IGNORED_KEYS = frozenset({"logit_scale", "input_resolution", "context_length", "vocab_size"})
_BLOCK_KEY = re.compile(r"^transformer\.resblocks\.(\d+)\.")


def is_text_key(key: str) -> bool:
    """False for the vision tower and the scalars that only the image-text pairing uses."""
    return not key.startswith("visual.") and key not in _IGNORED_KEYS


@dataclass(frozen=True)
class ClipTextConfig:
    """The text tower's hyperparameters, as OpenAI's build_model derives them from the weights."""

    vocab_size: int
    context_length: int
    width: int
    layers: int
    heads: int
    embed_dim: int

    @classmethod
    def from_shapes(
        cls, shapes: Mapping[str, Sequence[int]], source: str | Path = "<state dict>"
    ) -> ClipTextConfig:
        """Read the config off key shapes; `source` names the file in errors."""

        def dim(key: str, axis: int, ndim: int) -> int:
            if key not in shapes:
                raise ModelError(f"{source}: missing key {key!r}, so this is not a CLIP checkpoint")
            shape = tuple(shapes[key])
            if len(shape) != ndim:
                raise ModelError(f"{source}: {key} has shape {shape}, expected {ndim} dimensions")
            return int(shape[axis])

        width = dim("ln_final.weight", 0, 1)
        indices = sorted({int(m.group(1)) for k in shapes if (m := _BLOCK_KEY.match(k))})
        if indices != list(range(len(indices))):
            raise ModelError(f"{source}: transformer.resblocks indices {indices} are not 0..N-1")
        heads = width // 64  # OpenAI's rule: 64-wide heads
        if heads < 1 or width % heads:
            raise ModelError(f"{source}: text width {width} cannot be split into 64-wide heads")
        return cls(
            vocab_size=dim("token_embedding.weight", 0, 2),
            context_length=dim("positional_embedding", 0, 2),
            width=width,
            layers=len(indices),
            heads=heads,
            embed_dim=dim("text_projection", 1, 2),
        )

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every text-tower key with its shape, in OpenAI's naming."""
        w = self.width
        shapes: dict[str, tuple[int, ...]] = {
            "token_embedding.weight": (self.vocab_size, w),
            "positional_embedding": (self.context_length, w),
        }
        for i in range(self.layers):
            p = f"transformer.resblocks.{i}."
            shapes |= {
                p + "attn.in_proj_weight": (3 * w, w),
                p + "attn.in_proj_bias": (3 * w,),
                p + "attn.out_proj.weight": (w, w),
                p + "attn.out_proj.bias": (w,),
                p + "ln_1.weight": (w,),
                p + "ln_1.bias": (w,),
                p + "mlp.c_fc.weight": (4 * w, w),
                p + "mlp.c_fc.bias": (4 * w,),
                p + "mlp.c_proj.weight": (w, 4 * w),
                p + "mlp.c_proj.bias": (w,),
                p + "ln_2.weight": (w,),
                p + "ln_2.bias": (w,),
            }
        shapes |= {"ln_final.weight": (w,), "ln_final.bias": (w,), "text_projection": (w, self.embed_dim)}
        return shapes


def check_text_keys(
    shapes: Mapping[str, Sequence[int]], config: ClipTextConfig, source: str | Path
) -> list[str]:
    """The text keys to load; ValueError naming file, key, expected and found shape on any mismatch."""
    expected = config.expected_shapes()
    for key, want in expected.items():
        if key not in shapes:
            raise ModelError(f"{source}: missing key {key!r} (expected shape {want})")
        found = tuple(shapes[key])
        if found != want:
            raise ModelError(f"{source}: {key} has shape {found}, expected {want}")
    unexpected = [k for k in shapes if is_text_key(k) and k not in expected]
    if unexpected:
        raise ModelError(f"{source}: unexpected keys for CLIP's text tower: {unexpected}")
    return list(expected)


class QuickGELU(nn.Module):
    """OpenAI's GELU approximation; CLIP was trained with it, so exact GELU would drift."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CausalSelfAttention(nn.Module):
    """nn.MultiheadAttention's parameter layout (packed q/k/v), run through fused causal SDPA."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = layers.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block with OpenAI's submodule names (attn, ln_1, mlp.c_fc/c_proj, ln_2)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=layers.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=layers.Linear(4 * width, width))
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Holds `resblocks`, so keys read `transformer.resblocks.N.*` as in OpenAI's file."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class ClipTextEncoder(nn.Module):
    """Token ids (N, L) to CLIP text features (N, embed_dim): CLIP.encode_text without the image side.

    A bare instance holds uninitialised weights; `load_clip_text` builds one from a checkpoint.
    """

    def __init__(self, config: ClipTextConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = layers.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = Transformer(config.width, config.layers, config.heads)
        self.ln_final = nn.LayerNorm(config.width)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
        self.tokenizer = ClipTokenizer(context_length=config.context_length)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] > self.config.context_length or tokens.shape[1] == 0:
            limit = self.config.context_length
            raise ModelError(f"tokens must be (N, 1..{limit}), got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise ModelError(f"token ids must lie in [0, {self.config.vocab_size})")
        eot = tokens.argmax(dim=-1)  # EOT has the highest id, as in OpenAI's encode_text
        # Causal attention: positions after the last EOT cannot change any EOT feature, so skip them.
        length = int(eot.max()) + 1 if tokens.numel() else 1
        # the embedding table may stay in the file's precision: only the looked-up rows are widened
        x = self.token_embedding(tokens[:, :length]).float() + self.positional_embedding[:length]
        x = self.ln_final(self.transformer(x))
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection

    @torch.no_grad()
    def encode_text(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Prompts to features (N, embed_dim), tokenized as `clip.tokenize(..., truncate=True)`."""
        tokens = self.tokenizer(prompts).to(self.text_projection.device)
        return self(tokens)


def _read_plain_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A torch.save'd state dict (`read_state`: mmap keeps the vision tower's storages on disk)."""
    data = read_state(path, "CLIP checkpoint", "use OpenAI's ViT-B-32.pt")
    if not isinstance(data, Mapping):
        raise ModelError(f"{path}: holds a {type(data).__name__}, expected a CLIP state dict")
    for key, value in data.items():
        if is_text_key(str(key)) and not isinstance(value, torch.Tensor):
            raise ModelError(f"{path}: {key} is a {type(value).__name__}, expected a tensor")
    return dict(data)


def load_clip_text(path: str | Path, device: str | torch.device = "cpu") -> ClipTextEncoder:
    """CLIP's text tower from OpenAI's TorchScript file or a plain state dict, fp32, in eval mode.

    Only the text tower's tensors are read; shapes are checked before any weight is touched.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder; expected a CLIP file such as OpenAI's ViT-B-32.pt")
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint not found: {path}")
    if is_torchscript_archive(path):
        with TorchScriptArchive(path) as archive:
            shapes: dict[str, Any] = {k: r.shape for k, r in archive.records.items()}
            config = ClipTextConfig.from_shapes(shapes, source=path)
            tensors = archive.load(check_text_keys(shapes, config, path))
    else:
        state = _read_plain_state_dict(path)
        shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
        config = ClipTextConfig.from_shapes(shapes, source=path)
        tensors = {k: state[k] for k in check_text_keys(shapes, config, path)}
    for key, value in tensors.items():
        if not value.is_floating_point():
            raise ModelError(f"{path}: {key} has dtype {value.dtype}, expected floating point")
    # Built empty on the CPU (a meta-device build would import torch._dynamo: seconds), then every
    # parameter is replaced by its checkpoint tensor.
    model = ClipTextEncoder(config)
    # empty().copy_() converts fp16 to fp32 several times faster than .to() does on the CPU. The
    # token table (40% of the text tower) keeps the file's precision: rows are widened when used,
    # which gives the same numbers without converting 25 M values at every load.
    weights = {k: torch.empty(v.shape, dtype=torch.float32, device=device).copy_(v) for k, v in tensors.items()
               if k != "token_embedding.weight"}
    weights["token_embedding.weight"] = tensors["token_embedding.weight"].to(device)
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval()

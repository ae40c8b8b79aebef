"""Residual VQ-VAE: 1-D conv encoder → Q residual codebooks → 1-D conv decoder.

Module and parameter names follow the official file layout (`encoder.model.0.weight`,
`quantizer.layers.0.codebook`, ...) so the released `net_best_fid.tar` loads strictly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.options import require
from ..checkpoints.weights import check_option, indexed_count
from ..errors import ModelError
from . import layers

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
MAX_DILATION = 4096  # the released model's largest dilation is 9; a huge one pads every input by as much


@dataclass(frozen=True)
class RVQConfig:
    input_dim: int           # motion feature width: 263 (t2m) or 251 (kit)
    nb_code: int             # entries per codebook
    code_dim: int            # latent width (= output_emb_width)
    num_quantizers: int      # residual layers Q
    width: int               # conv channels
    depth: int               # residual blocks per resolution
    down_t: int              # number of 2x temporal downsamplings
    stride_t: int
    dilation_growth_rate: int
    activation: str = "relu"
    shared_codebook: bool = False

    @classmethod
    def from_options(cls, options: dict, input_dim: int, path: Path) -> RVQConfig:
        norm = options.get("vq_norm", "None")
        if norm not in ("None", None):
            raise ModelError(f"{path}: vq_norm {norm!r} is not supported (the released models use None)")
        activation = str(options.get("vq_act", "relu"))
        if activation not in _ACTIVATIONS:
            raise ModelError(f"{path}: vq_act {activation!r} is not one of {sorted(_ACTIVATIONS)}")
        code_dim = require(options, "code_dim", int, path)
        if options.get("output_emb_width", code_dim) != code_dim:
            raise ModelError(f"{path}: output_emb_width must equal code_dim ({code_dim})")
        return cls(
            input_dim=input_dim,
            nb_code=require(options, "nb_code", int, path),
            code_dim=code_dim,
            num_quantizers=require(options, "num_quantizers", int, path),
            width=require(options, "width", int, path),
            depth=require(options, "depth", int, path),
            down_t=require(options, "down_t", int, path),
            stride_t=require(options, "stride_t", int, path),
            dilation_growth_rate=require(options, "dilation_growth_rate", int, path),
            activation=activation,
            shared_codebook=bool(options.get("shared_codebook", False)),
        )

    @property
    def frames_per_token(self) -> int:
        return self.stride_t ** self.down_t

    def check_weights(self, state: dict[str, torch.Tensor], path: Path) -> None:
        """The counts and sizes that shape the network, against the weights: checked before building."""
        check_option(path, "num_quantizers", self.num_quantizers,
                     indexed_count(state, r"^quantizer\.layers\.(\d+)\.codebook$"), "codebooks")
        check_option(path, "down_t", self.down_t, indexed_count(state, r"^encoder\.model\.(\d+)\.0\.weight$"),
                     "downsampling blocks")
        if self.down_t:
            check_option(path, "depth", self.depth,
                         indexed_count(state, r"^encoder\.model\.2\.1\.model\.(\d+)\.conv1\.weight$"),
                         "residual blocks per resolution")
            down = state.get("encoder.model.2.0.weight")
            if down is not None and down.ndim == 3:
                check_option(path, "stride_t", self.stride_t * 2, int(down.shape[2]), "as the kernel (2 x stride_t)")
        codebook = state.get("quantizer.layers.0.codebook")
        if codebook is not None and codebook.ndim == 2:
            check_option(path, "nb_code", self.nb_code, int(codebook.shape[0]), "codes per codebook")
            check_option(path, "code_dim", self.code_dim, int(codebook.shape[1]), "values per code")
        first = state.get("encoder.model.0.weight")
        if first is not None and first.ndim == 3:
            check_option(path, "width", self.width, int(first.shape[0]), "conv channels")
        growth = self.dilation_growth_rate
        if not (1 <= growth and growth ** max(self.depth - 1, 0) <= MAX_DILATION):
            raise ModelError(f"{path}: dilation_growth_rate {growth} with depth {self.depth} "
                             f"gives dilations past {MAX_DILATION}: the options are corrupted")


class ResBlock(nn.Module):
    """act → dilated conv3 → act → conv1, plus the input."""

    def __init__(self, width: int, dilation: int, activation: str):
        super().__init__()
        self.activation1 = _ACTIVATIONS[activation]()
        self.conv1 = layers.Conv1d(width, width, 3, 1, dilation, dilation)
        self.activation2 = _ACTIVATIONS[activation]()
        self.conv2 = layers.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.activation2(self.conv1(self.activation1(x))))


class ResStack(nn.Module):
    """`depth` residual blocks with growing dilation; the decoder runs them largest first."""

    def __init__(self, width: int, depth: int, growth: int, activation: str, reverse: bool):
        super().__init__()
        blocks = [ResBlock(width, growth ** i, activation) for i in range(depth)]
        self.model = nn.Sequential(*(blocks[::-1] if reverse else blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _encoder(c: RVQConfig) -> nn.Sequential:
    act = _ACTIVATIONS[c.activation]
    blocks: list[nn.Module] = [layers.Conv1d(c.input_dim, c.width, 3, 1, 1), act()]
    for _ in range(c.down_t):
        blocks.append(nn.Sequential(
            layers.Conv1d(c.width, c.width, c.stride_t * 2, c.stride_t, c.stride_t // 2),
            ResStack(c.width, c.depth, c.dilation_growth_rate, c.activation, reverse=True),
        ))
    blocks.append(layers.Conv1d(c.width, c.code_dim, 3, 1, 1))
    return nn.Sequential(*blocks)


def _decoder(c: RVQConfig) -> nn.Sequential:
    act = _ACTIVATIONS[c.activation]
    blocks: list[nn.Module] = [layers.Conv1d(c.code_dim, c.width, 3, 1, 1), act()]
    for _ in range(c.down_t):
        blocks.append(nn.Sequential(
            ResStack(c.width, c.depth, c.dilation_growth_rate, c.activation, reverse=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            layers.Conv1d(c.width, c.width, 3, 1, 1),
        ))
    blocks += [layers.Conv1d(c.width, c.width, 3, 1, 1), act(), layers.Conv1d(c.width, c.input_dim, 3, 1, 1)]
    return nn.Sequential(*blocks)


class _Coder(nn.Module):
    def __init__(self, model: nn.Sequential):
        super().__init__()
        self.model = model


class Codebook(nn.Module):
    def __init__(self, nb_code: int, code_dim: int):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))


class ResidualQuantizer(nn.Module):
    def __init__(self, c: RVQConfig):
        super().__init__()
        self.layers = nn.ModuleList(Codebook(c.nb_code, c.code_dim) for _ in range(c.num_quantizers))

    def codebooks(self) -> torch.Tensor:
        return torch.stack([layer.codebook for layer in self.layers])  # (Q, K, D)


class RVQVAE(nn.Module):
    def __init__(self, config: RVQConfig):
        super().__init__()
        self.config = config
        self.encoder = _Coder(_encoder(config))
        self.decoder = _Coder(_decoder(config))
        self.quantizer = ResidualQuantizer(config)

    @torch.no_grad()
    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features (B, T, C) → token ids (B, T/4, Q) and each layer's codes (Q, B, D, T/4)."""
        residual = self.encoder.model(features.transpose(1, 2).float())  # (B, D, N)
        batch, dim, length = residual.shape
        ids, codes = [], []
        for codebook in self.quantizer.codebooks():
            flat = residual.permute(0, 2, 1).reshape(-1, dim)                   # (B*N, D)
            distance = (flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ codebook.t()
                        + codebook.t().pow(2).sum(0, keepdim=True))            # (B*N, K)
            index = distance.neg().argmax(-1)
            code = F.embedding(index, codebook).view(batch, length, dim).permute(0, 2, 1)
            residual = residual - code
            ids.append(index.view(batch, length))
            codes.append(code)
        return torch.stack(ids, -1), torch.stack(codes)

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Sum of the looked-up codes of ids (B, N, q ≤ Q); id -1 contributes zero."""
        codebooks = self.quantizer.codebooks()[: ids.shape[-1]]                 # (q, K, D)
        valid = ids >= 0
        safe = ids.clamp(min=0)
        latent = torch.zeros(*ids.shape[:2], codebooks.shape[-1], dtype=codebooks.dtype, device=ids.device)
        for layer in range(ids.shape[-1]):
            code = F.embedding(safe[..., layer], codebooks[layer])              # (B, N, D)
            latent = latent + code * valid[..., layer, None]
        return latent

    @torch.no_grad()
    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, N, q) → normalised features (B, N * 4, C)."""
        latent = self.codes_from_ids(ids).transpose(1, 2)                       # (B, D, N)
        return self.decoder.model(latent).transpose(1, 2)

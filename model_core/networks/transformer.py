"""The two text-conditioned transformers: masked (base tokens) and residual (finer layers).

Both are post-norm encoders with GELU feed-forward, the text feature prepended as one extra
token. Parameter names follow the official checkpoints (`seqTransEncoder.layers.0.self_attn...`)
so the released files load strictly. Tensors are batch-first here: (B, N, D).
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

TRAINING_DEFAULT_HEADS = 6  # the residual trainer's default when opt.txt has no n_heads line
MAX_POSITIONS = 5000        # length of the stored positional-encoding table


@dataclass(frozen=True)
class TransformerConfig:
    num_tokens: int      # codebook size K
    code_dim: int        # token embedding width
    latent_dim: int      # transformer width
    ff_size: int
    num_layers: int
    num_heads: int
    num_quantizers: int  # Q of the RVQ the model was trained on
    clip_dim: int = 512
    share_weight: bool = False

    @classmethod
    def from_options(cls, options: dict, path: Path, *, num_tokens: int, code_dim: int,
                     num_quantizers: int, clip_dim: int, default_heads: int | None = None) -> TransformerConfig:
        if "n_heads" not in options and default_heads is None:
            raise ModelError(f"{path}: option 'n_heads' is missing")
        heads = require(options, "n_heads", int, path) if "n_heads" in options else default_heads
        config = cls(
            num_tokens=num_tokens, code_dim=code_dim,
            latent_dim=require(options, "latent_dim", int, path),
            ff_size=require(options, "ff_size", int, path),
            num_layers=require(options, "n_layers", int, path),
            num_heads=heads,
            num_quantizers=num_quantizers, clip_dim=clip_dim,
            share_weight=bool(options.get("share_weight", False)),
        )
        if not 1 <= config.num_heads <= config.latent_dim:
            raise ModelError(f"{path}: n_heads must be from 1 to latent_dim ({config.latent_dim}), "
                             f"got {config.num_heads}")
        if config.latent_dim % config.num_heads:
            raise ModelError(f"{path}: latent_dim {config.latent_dim} is not divisible by n_heads {config.num_heads}")
        return config

    def check_weights(self, state: dict[str, torch.Tensor], path: Path) -> None:
        """The counts and sizes that shape the network, against the weights: checked before building."""
        check_option(path, "n_layers", self.num_layers,
                     indexed_count(state, r"^seqTransEncoder\.layers\.(\d+)\."), "encoder layers")
        cond = state.get("cond_emb.weight")
        if cond is not None and cond.ndim == 2:
            check_option(path, "latent_dim", self.latent_dim, int(cond.shape[0]), "as the transformer width")
        linear1 = state.get("seqTransEncoder.layers.0.linear1.weight")
        if linear1 is not None and linear1.ndim == 2:
            check_option(path, "ff_size", self.ff_size, int(linear1.shape[0]), "as the feed-forward width")


class SelfAttention(nn.Module):
    """Multi-head self-attention with one packed input projection, as nn.MultiheadAttention stores it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = layers.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)              # (B, N, 3D)
        q, k, v = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)           # (B, h, N, hd)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    """Post-norm block: x = norm1(x + attn(x)); x = norm2(x + ff(x))."""

    def __init__(self, dim: int, heads: int, ff_size: int):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = layers.Linear(dim, ff_size)
        self.linear2 = layers.Linear(ff_size, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x, keep))
        return self.norm2(x + self.linear2(F.gelu(self.linear1(x))))


class Encoder(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(c.latent_dim, c.num_heads, c.ff_size) for _ in range(c.num_layers))

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        """`padding` (B, N) is True where a position is padding: no position attends to those."""
        keep = None if padding is None or not padding.any() else (~padding)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, keep)
        return x


class _InputProcess(nn.Module):
    def __init__(self, code_dim: int, latent_dim: int):
        super().__init__()
        self.poseEmbedding = layers.Linear(code_dim, latent_dim)


class _PositionalEncoding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("pe", torch.zeros(MAX_POSITIONS, 1, dim))


class _OutputHead(nn.Module):
    """dense → GELU → LayerNorm(eps 1e-12) → linear."""

    def __init__(self, latent_dim: int, out_dim: int):
        super().__init__()
        self.dense = layers.Linear(latent_dim, latent_dim)
        self.LayerNorm = nn.LayerNorm(latent_dim, eps=1e-12)
        self.poseFinal = layers.Linear(latent_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.poseFinal(self.LayerNorm(F.gelu(self.dense(x))))


class _Backbone(nn.Module):
    """What both transformers share: input projection, positions, text condition, encoder, head."""

    def __init__(self, c: TransformerConfig, head_dim: int):
        super().__init__()
        self.config = c
        self.input_process = _InputProcess(c.code_dim, c.latent_dim)
        self.position_enc = _PositionalEncoding(c.latent_dim)
        self.seqTransEncoder = Encoder(c)
        self.cond_emb = layers.Linear(c.clip_dim, c.latent_dim)
        self.output_process = _OutputHead(c.latent_dim, head_dim)

    def _run(self, prefix: list[torch.Tensor], x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        """Encode [prefix tokens, x + positions]; return the head's output at x's positions.

        The prefix batch may be a multiple of x's (guided passes share their inputs): x is
        projected once and repeated, not projected once per condition.
        """
        n = x.shape[1]
        if n > MAX_POSITIONS:
            raise ModelError(f"sequence of {n} tokens is longer than the {MAX_POSITIONS} positions the model has")
        repeat = prefix[0].shape[0] // x.shape[0]
        x = self.input_process.poseEmbedding(x) + self.position_enc.pe[:n, 0]
        seq = torch.cat([*prefix, x.repeat(repeat, 1, 1) if repeat > 1 else x], dim=1)
        if padding is not None:
            padding = F.pad(padding.repeat(repeat, 1), (len(prefix), 0), value=False)
        out = self.seqTransEncoder(seq, padding)[:, len(prefix):]
        return self.output_process(out)


def guided(forward, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: one batched pass with the text and with a zeroed condition.

    `forward(cond)` gives logits for a batch of conditions; with scale 1 the unconditioned
    pass is skipped, as the official code does.
    """
    if scale == 1:
        return forward(cond)
    both = forward(torch.cat([cond, torch.zeros_like(cond)]))
    with_text, without = both.chunk(2)
    return without + (with_text - without) * scale


class MaskTransformer(_Backbone):
    """Predicts base-layer token ids from partially masked ids. Ids K and K+1 are mask and pad."""

    def __init__(self, c: TransformerConfig):
        super().__init__(c, head_dim=c.num_tokens)
        self.token_emb = layers.Embedding(c.num_tokens + 2, c.code_dim)

    @property
    def mask_id(self) -> int:
        return self.config.num_tokens

    @property
    def pad_id(self) -> int:
        return self.config.num_tokens + 1

    def forward(self, ids: torch.Tensor, cond: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        """ids (B, N), text features (B, clip_dim), padding (B, N) → logits (B, N, K).

        The batch of `cond` may be a multiple of the batch of ids (guided passes share ids)."""
        return self._run([self.cond_emb(cond)[:, None]], self.token_emb(ids), padding)


class ResidualTransformer(_Backbone):
    """Predicts residual layer q's ids from the sum of the embeddings of layers < q."""

    def __init__(self, c: TransformerConfig):
        super().__init__(c, head_dim=c.code_dim)
        q, k, d = c.num_quantizers, c.num_tokens + 1, c.code_dim
        self.quant_emb = layers.Linear(q, c.latent_dim)
        if c.share_weight:
            # layer q's input embedding is tied to layer q-1's output projection
            self.embed_proj_shared_weight = nn.Parameter(torch.empty(q - 2, k, d))
            self.token_embed_weight_ = nn.Parameter(torch.empty(1, k, d))
            self.output_proj_weight_ = nn.Parameter(torch.empty(1, k, d))
        else:
            self.token_embed_weight = nn.Parameter(torch.empty(q - 1, k, d))
            self.output_proj_weight = nn.Parameter(torch.empty(q - 1, k, d))
            self.output_proj_bias = nn.Parameter(torch.empty(q, k))

    @property
    def pad_id(self) -> int:
        return self.config.num_tokens

    def token_embeddings(self) -> torch.Tensor:
        """(Q-1, K+1, D): the input embedding table of each residual layer."""
        if self.config.share_weight:
            return torch.cat([self.token_embed_weight_, self.embed_proj_shared_weight])
        return self.token_embed_weight

    def _output_projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.config.share_weight:
            return torch.cat([self.embed_proj_shared_weight, self.output_proj_weight_]), None
        return self.output_proj_weight, self.output_proj_bias

    def forward(self, history: torch.Tensor, layer: int, cond: torch.Tensor,
                padding: torch.Tensor | None) -> torch.Tensor:
        """history (B, N, D) for residual layer `layer` (1..Q-1) → logits (B, N, K+1)."""
        onehot = F.one_hot(torch.tensor(layer, device=cond.device), self.config.num_quantizers).to(cond.dtype)
        quant = self.quant_emb(onehot).expand(cond.shape[0], 1, -1)
        hidden = self._run([self.cond_emb(cond)[:, None], quant], history, padding)   # (B, N, D)
        weight, bias = self._output_projection()
        logits = hidden @ weight[layer - 1].t()                                  # (B, N, K+1)
        if bias is not None:
            # the official projection adds its output to itself before the bias: kept for parity
            logits = 2 * logits + bias[layer - 1]
        return logits

"""Decoding loops as pure functions of a logits callback (MaskGIT style), plus their helpers.

The callbacks hide the networks and guidance; these functions only hold the schedule, the
filtering and the sampling, so they read like the official algorithm and are testable alone.
Ops whose tie-breaking matters (argsort, topk) are the same calls the official code makes.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..settings import MIN_TEMPERATURE

KEPT = 1e5  # score of a position that must not be re-masked (already kept, or padding)


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """Fraction of tokens still masked at progress t in [0, 1]."""
    return torch.cos(t * math.pi * 0.5)


def top_k_filter(logits: torch.Tensor, thres: float) -> torch.Tensor:
    """Keep the ceil((1 - thres) * K) largest logits of the last axis, the rest become -inf."""
    k = math.ceil((1 - thres) * logits.shape[-1])
    values, index = logits.topk(k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, index, values)


Generators = Sequence[torch.Generator] | None  # one per sample (batch row), or the global stream


def _rows(batch: int, generators: Generators, lengths: Sequence[int] | None):
    generators = [None] * batch if generators is None else generators
    lengths = [None] * batch if lengths is None else lengths
    return zip(generators, lengths, strict=True)


def categorical_sample(logits: torch.Tensor, temperature: float, generators: Generators,
                       lengths: Sequence[int] | None = None) -> torch.Tensor:
    """Sample ids from softmax(logits / temperature) over the last axis (B, N, K).

    Each row draws from its own stream and only over its own `lengths[i]` positions, so a
    sample's result does not depend on what else (or how much padding) is in the batch.
    """
    probs = F.softmax(logits / temperature, dim=-1)
    picked = torch.zeros(probs.shape[:-1], dtype=torch.long, device=probs.device)
    for i, (g, n) in enumerate(_rows(len(probs), generators, lengths)):
        picked[i, :n] = torch.multinomial(probs[i, :n], 1, replacement=True, generator=g)[:, 0]
    return picked


def gumbel_sample(logits: torch.Tensor, temperature: float, generators: Generators,
                  lengths: Sequence[int] | None = None) -> torch.Tensor:
    """argmax(logits / temperature + Gumbel noise) over the last axis (B, N, K), rows as above."""
    uniform = torch.full_like(logits, 0.5)
    for i, (g, n) in enumerate(_rows(len(logits), generators, lengths)):
        row = uniform[i, :n]
        row.copy_(torch.rand(row.shape, generator=g, device=logits.device, dtype=logits.dtype))
    noise = -torch.log((-torch.log(uniform.clamp(min=1e-20))).clamp(min=1e-20))
    return (logits / max(temperature, MIN_TEMPERATURE) + noise).argmax(-1)


def lengths_to_padding(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths → (B, size) mask, True at padding."""
    return torch.arange(size, device=lengths.device)[None] >= lengths[:, None]


def masked_decode(logits_fn: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, editable: torch.Tensor,
                  padding: torch.Tensor, *, steps: int, mask_id: int, temperature: float, topk: float,
                  generators: Generators,
                  on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Fill the `editable` positions of `ids` (B, N) by iterative remasking.

    At step s of `steps` the cosine schedule says how many editable tokens stay masked: those
    with the lowest confidence are masked again and re-predicted, the rest are kept. Plain
    generation is the case where every non-padding position is editable.
    `logits_fn(ids)` returns guided logits (B, N, K). Returns ids with -1 at padding.
    """
    editable = editable & ~padding
    count = editable.sum(-1)                                                  # (B,)
    lengths = (~padding).sum(-1).tolist()
    scores = torch.where(editable, 0.0, KEPT)
    ids = torch.where(editable, mask_id, ids)
    for step, t in enumerate(torch.linspace(0, 1, steps, device=ids.device)):
        num_masked = torch.round(cosine_schedule(t) * count).clamp(min=1)
        ranks = scores.argsort(dim=1).argsort(dim=1)
        is_mask = ranks < num_masked[:, None]
        ids = torch.where(is_mask, mask_id, ids)
        if on_step is not None:
            on_step(step, ids)
        logits = logits_fn(ids)
        predicted = categorical_sample(top_k_filter(logits, topk), temperature, generators, lengths)
        ids = torch.where(is_mask, predicted, ids)
        confidence = logits.softmax(-1).gather(-1, predicted[..., None])[..., 0]
        scores = confidence.masked_fill(~is_mask, KEPT)
    return torch.where(padding, -1, ids)


def residual_decode(logits_fn: Callable[[torch.Tensor, int], torch.Tensor], embeddings: torch.Tensor,
                    base: torch.Tensor, padding: torch.Tensor, *, pad_id: int, temperature: float,
                    topk: float, generators: Generators) -> torch.Tensor:
    """Predict residual layers 1..Q-1 one after the other from the base ids (B, N).

    `embeddings` (Q-1, K+1, D) are the residual model's input tables; layer q sees the sum of
    the embeddings of every layer below it. Returns (B, N, Q) with -1 at padding (and wherever
    the model chose the pad id).
    """
    ids = torch.where(padding, pad_id, base)
    lengths = (~padding).sum(-1).tolist()
    layers = [ids]
    history = torch.zeros(*ids.shape, embeddings.shape[-1], dtype=embeddings.dtype, device=ids.device)
    for layer in range(1, embeddings.shape[0] + 1):
        history = history + F.embedding(ids, embeddings[layer - 1])
        logits = logits_fn(history, layer)
        predicted = gumbel_sample(top_k_filter(logits, topk), temperature, generators, lengths)
        ids = torch.where(padding, pad_id, predicted)
        layers.append(ids)
    stacked = torch.stack(layers, -1)
    return torch.where(stacked == pad_id, -1, stacked)

"""The opt-in fast path: int8 weights for the transformers' matrix products.

Weights are quantised per output channel once at load; activations are quantised on the fly
(fbgemm's dynamic int8 linear), which on AVX2 CPUs runs the transformers' matrix products
well above fp32 speed. Tokens may differ from the exact path where two choices are nearly
tied; `bench.speed` reports how often greedy tokens agree.
"""
from __future__ import annotations

import torch
from torch import nn


class Int8Linear(nn.Module):
    """y = x Wᵀ + b with W held as per-channel int8 and x quantised per call."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        weight = weight.detach().float().contiguous()
        scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        qweight = torch.quantize_per_channel(weight, scales.double(), torch.zeros_like(scales, dtype=torch.long),
                                             0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.detach().float())
        self.out_features = weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).contiguous()
        return torch.ops.quantized.linear_dynamic(flat, self.packed).view(*x.shape[:-1], self.out_features)


def quantise_linears(model: nn.Module) -> nn.Module:
    """Replace every nn.Linear and packed attention projection of `model` by its int8 version."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(child.weight, child.bias))
        if hasattr(module, "in_proj_weight"):
            module.in_proj = Int8Linear(module.in_proj_weight, module.in_proj_bias)
    return model


def available() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines

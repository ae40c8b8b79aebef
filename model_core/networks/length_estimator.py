"""Text feature → distribution over motion lengths in tokens (official `LengthEstimator`)."""
from __future__ import annotations

import torch
from torch import nn

from . import layers

HIDDEN = 512  # fixed in the official model, independent of the text width


class LengthEstimator(nn.Module):
    """Three Linear-LayerNorm-LeakyReLU stages and a classifier over `num_lengths` token counts.

    Indices skip the dropout/activation slots so the keys match `output.0`, `output.4`, ...
    """

    def __init__(self, input_dim: int, num_lengths: int):
        super().__init__()
        dims = [input_dim, HIDDEN, HIDDEN // 2, HIDDEN // 4]
        stages: dict[str, nn.Module] = {}
        slot = 0
        for i in range(3):
            stages[str(slot)] = layers.Linear(dims[i], dims[i + 1])
            stages[str(slot + 1)] = nn.LayerNorm(dims[i + 1])
            stages[str(slot + 2)] = nn.LeakyReLU(0.2)
            slot += 4 if i < 2 else 3  # a dropout follows the first two stages
        stages[str(slot)] = layers.Linear(dims[3], num_lengths)
        self.output = nn.Sequential()
        for name, module in stages.items():
            self.output.add_module(name, module)

    def forward(self, text_features: torch.Tensor) -> torch.Tensor:
        return self.output(text_features)

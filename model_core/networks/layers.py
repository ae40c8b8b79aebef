"""Layers that skip random initialisation: every weight of ours comes from a checkpoint.

Initialising the released models' parameters costs more than reading them. These subclasses keep
PyTorch's parameter names and shapes, so state dicts load into them unchanged; unlike switching
initialisation off globally while loading, they affect no other code running at the same time.
"""
from __future__ import annotations

from torch import nn


class Linear(nn.Linear):
    def reset_parameters(self) -> None:
        pass


class Embedding(nn.Embedding):
    def reset_parameters(self) -> None:
        pass


class Conv1d(nn.Conv1d):
    def reset_parameters(self) -> None:
        pass

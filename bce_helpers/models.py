"""Models the notebooks train: small, so the lesson, not the model, is the point."""

from __future__ import annotations

import torch
from torch import nn


class ConstantLogit(nn.Module):
    """Predicts one learned logit for every input: the best a model without features can do."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], 1)

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


class MLP(nn.Module):
    """The guide's multilayer perceptron (05): Flatten, 2352 -> 64 -> 32 -> 1, ReLU between.

    With sigmoid=True (the guide's) it ends in a Sigmoid and outputs probabilities for
    BCELoss; with sigmoid=False it outputs logits for BCEWithLogitsLoss.
    """

    def __init__(self, in_features: int = 28 * 28 * 3, sigmoid: bool = True) -> None:
        super().__init__()
        layers = [
            nn.Flatten(),
            nn.Linear(in_features, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 1),
        ]
        self.layers = nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def keras_style_mlp(in_features: int = 2, hidden: int = 100) -> nn.Sequential:
    """Dense(hidden, relu) then Dense(1, sigmoid) with Keras's default initialisation.

    Keras starts Dense layers with glorot-uniform weights and zero biases; torch's
    nn.Linear defaults differ (kaiming-uniform weights, uniform biases).
    """
    model = nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()
    )
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model

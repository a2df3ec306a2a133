"""The training loop of notebook 05's guide, as the guide writes it: the reference that the
lesson's loop (`bce_helpers.train`) and its fast path (`bce_helpers.fast.training`) must
reproduce."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.models import MLP


def guide_losses(
    n: int, image_size: tuple[int, int, int], epochs: int, lr: float, batch_size: int
) -> list[float]:
    """Every batch's loss of the guide's loop on FakeData (2 classes), minus its prints:
    a DataLoader that shuffles, an MLP with a Sigmoid, BCELoss and Adam."""
    dataset = FakeData(n, image_size, 2, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    mlp = MLP(in_features=image_size[0] * image_size[1] * image_size[2])
    loss_function = nn.BCELoss()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        for inputs, targets in loader:
            targets = targets.type(torch.FloatTensor).reshape((targets.shape[0], 1))
            optimizer.zero_grad()
            loss = loss_function(mlp(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses

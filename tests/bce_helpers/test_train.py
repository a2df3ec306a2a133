"""bce_helpers.train against a shuffling DataLoader, the guide's own loop, torch's losses, and
gradients and Newton steps computed by hand."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bce_helpers.data import train_test_images
from bce_helpers.models import MLP, ConstantLogit
from bce_helpers.train import (
    chance_loss,
    criterion_for,
    newton_step_length,
    shuffled_batches,
    training_step,
)
from tests.bce_helpers.guide_loop import guide_losses

# --- shuffled_batches, training_step: the lesson's loop ---------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_shuffled_batches_match_a_shuffling_dataloader(workers):
    x = torch.arange(100.0).unsqueeze(1)
    y = torch.arange(100.0) % 2
    torch.manual_seed(5)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, num_workers=workers)
    expected = [xb.flatten().tolist() for _ in range(2) for xb, _ in loader]
    after_loader = torch.rand(1)
    torch.manual_seed(5)
    got = [xb.flatten().tolist() for _ in range(2) for xb, _ in shuffled_batches(x, y, 16)]
    assert got == expected
    assert torch.equal(torch.rand(1), after_loader), "global random state ends the same"


def test_shuffled_batches_cover_every_sample_once_in_batches_of_the_size():
    x = torch.arange(23.0).unsqueeze(1)
    y = -x
    torch.manual_seed(1)
    batches = list(shuffled_batches(x, y, 5))
    assert [len(b) for b, _ in batches] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat([b for b, _ in batches]).flatten().tolist()) == list(range(23))
    assert all(torch.equal(t, -b) for b, t in batches), "inputs and targets stay paired"


def test_training_step_clears_old_gradients_and_takes_the_hand_computed_step():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g)
    y = (torch.rand(6, 1, generator=g) < 0.5).float()
    model = nn.Linear(3, 1)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    (model(x) * 7).sum().backward()  # stale gradients: the step must not add to them
    step = training_step(model, nn.BCEWithLogitsLoss(), torch.optim.SGD(model.parameters(), 0.5))
    loss = step(x, y)
    # by hand: mean BCE with logits of z = x w^T + b, and its gradient (sigmoid(z) - y) / N
    z = x @ weight.T + bias
    expected = -(y * torch.sigmoid(z).log() + (1 - y) * torch.sigmoid(-z).log()).mean()
    residual = (torch.sigmoid(z) - y) / len(x)
    torch.testing.assert_close(loss, expected)
    assert not loss.requires_grad, "the loss comes back detached from the graph"
    torch.testing.assert_close(model.weight.detach(), weight - 0.5 * residual.T @ x)
    torch.testing.assert_close(model.bias.detach(), bias - 0.5 * residual.sum(0))


def test_the_lessons_loop_trains_as_the_guides_dataloader_loop_bit_for_bit():
    """Same seed, model, data, batches and optimizer: the same losses, batch by batch."""
    n, shape = 330, (3, 8, 8)  # 330 = 10 full batches of 32 and a short one of 10
    torch.manual_seed(42)
    expected = guide_losses(n, shape, 2, 1e-3, 32)
    images, targets, _, _ = train_test_images("fakedata", n, 10, shape)
    torch.manual_seed(42)
    model = MLP(in_features=192)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = training_step(model, criterion_for("bce"), optimizer)
    losses = [
        step(inputs, batch_targets).item()
        for _ in range(2)
        for inputs, batch_targets in shuffled_batches(images, targets, 32)
    ]
    assert len(losses) == 2 * 11 and losses == expected


# --- chance_loss, newton_step_length ----------------------------------------------------------


def entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_chance_loss_is_the_label_entropy_and_zero_for_one_class():
    assert chance_loss(torch.tensor([0.0, 1.0, 1.0, 0.0])) == pytest.approx(math.log(2))
    assert chance_loss(torch.tensor([1, 1, 1, 0])) == pytest.approx(entropy(0.75))
    assert chance_loss(torch.tensor([1, 0, 0, 0])) == pytest.approx(entropy(0.25))
    assert chance_loss(torch.tensor([[0.0], [1.0], [0.0], [0.0], [0.0]])) == pytest.approx(
        entropy(0.2)
    )
    assert chance_loss(torch.zeros(6, 1)) == 0.0  # log(0) would be undefined
    assert chance_loss(torch.ones(3, dtype=torch.long)) == 0.0


def logistic_newton_step(weight, bias, x, y):
    """|H^-1 g| for mean BCE-with-logits of x @ weight.T + bias, by hand (float64)."""
    z = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    theta = torch.cat([weight.flatten(), bias.flatten()]).double()
    p = torch.sigmoid(z @ theta)
    g = z.T @ (p - y.flatten().double()) / len(x)
    h = z.T @ (z * (p * (1 - p)).unsqueeze(1)) / len(x)
    return torch.linalg.solve(h, g).norm().item()


def test_newton_step_length_of_logistic_regression_matches_the_hand_computation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = (torch.rand(40, 1, generator=g) < 0.4).float()
    model = nn.Linear(3, 1)  # two parameter tensors: a [1, 3] weight and a [1] bias
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 0.25]]))
        model.bias.fill_(-0.3)
    loss = nn.BCEWithLogitsLoss()
    length = newton_step_length(model, lambda out: loss(out, y), x)
    expected = logistic_newton_step(model.weight.detach(), model.bias.detach(), x, y)
    assert length == pytest.approx(expected, rel=1e-4)
    assert expected > 0.1  # far enough from the optimum to mean something


def test_newton_step_length_of_the_constant_logit_is_gradient_over_curvature():
    labels = torch.tensor([[1.0], [0.0], [0.0], [0.0], [1.0]])  # p = 0.4
    w, p, b = 3.0, 0.4, 0.25
    model = ConstantLogit()
    with torch.no_grad():
        model.bias.fill_(b)
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([w]))
    length = newton_step_length(model, lambda out: criterion(out, labels), torch.zeros(5, 2))
    s = 1 / (1 + math.exp(-b))
    gradient = (w * p + 1 - p) * s - w * p  # by hand, notebook 04's derivative
    curvature = (w * p + 1 - p) * s * (1 - s)
    assert length == pytest.approx(abs(gradient / curvature), rel=1e-5)
    with torch.no_grad():  # at b* = log(w p / (1 - p)) the step is 0
        model.bias.fill_(math.log(w * p / (1 - p)))
    assert newton_step_length(model, lambda out: criterion(out, labels), torch.zeros(5, 2)) < 1e-6
    with torch.no_grad():  # a saturated sigmoid is flat: no optimum in reach
        model.bias.fill_(60.0)
    assert (
        newton_step_length(model, lambda out: criterion(out, labels), torch.zeros(5, 2)) == math.inf
    )


def test_newton_step_length_is_inf_where_the_loss_is_flat():
    # all-zero inputs: the loss does not depend on the weights, the Hessian is singular
    model = nn.Linear(2, 1)
    y = torch.tensor([[1.0], [0.0], [1.0]])
    loss = nn.BCEWithLogitsLoss()
    assert newton_step_length(model, lambda out: loss(out, y), torch.zeros(3, 2)) == math.inf


# --- criterion_for ----------------------------------------------------------------------------


def test_criterion_for_names_torchs_losses_and_every_choice():
    assert type(criterion_for("bce")) is nn.BCELoss
    assert type(criterion_for("bce_with_logits")) is nn.BCEWithLogitsLoss
    logits, targets = torch.randn(6, 1), torch.rand(6, 1)
    expected = nn.functional.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(criterion_for("bce")(torch.sigmoid(logits), targets), expected)
    assert torch.equal(criterion_for("bce_with_logits")(logits, targets), expected)
    from bce_helpers.fast.fused import fused_bce_with_logits  # tested against torch in test_fused

    assert criterion_for("fused_bce_with_logits") is fused_bce_with_logits
    for bad in ("BCE", "mse"):
        with pytest.raises(ValueError) as refused:
            criterion_for(bad)
        assert str(refused.value) == (
            f"loss must be one of 'bce', 'bce_with_logits', 'fused_bce_with_logits', got {bad!r}"
        )

"""bce_helpers.data and bce_helpers.train against torchvision and DataLoader themselves."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import fake_images, imbalanced_blobs, learnable_images
from bce_helpers.models import MLP, ConstantLogit
from bce_helpers.train import (
    CudaGraphStep,
    chance_loss,
    newton_step_length,
    seed_order_batches,
    train_seed_mlp,
    warm_up_then_reset,
)


@pytest.mark.parametrize(
    ("size", "image_size", "num_classes", "offset"),
    [(40, (3, 28, 28), 2, 0), (25, (1, 7, 5), 10, 1000), (10, (3, 224, 224), 10, 3)],
)
def test_fake_images_equal_torchvision_fakedata(size, image_size, num_classes, offset):
    ds = FakeData(
        size, image_size, num_classes, transform=transforms.ToTensor(), random_offset=offset
    )
    images, labels = fake_images(size, image_size, num_classes, random_offset=offset)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.shape == (size, *image_size) and labels.shape == (size,)
    assert torch.equal(images, torch.stack([ds[i][0] for i in range(size)]))
    assert labels.tolist() == [ds[i][1] for i in range(size)]


def test_fake_images_leave_the_global_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fake_images(4, (3, 4, 4), 2)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(size=0), "size must be a positive int, got 0"),
        (dict(size=4, image_size=(3, 4)), r"image_size must be three positive ints"),
        (dict(size=4, image_size=(2, 4, 4)), "1 or 3 channels"),
        (dict(size=4, num_classes=0), "num_classes must be a positive int, got 0"),
    ],
)
def test_fake_images_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fake_images(**kwargs)


def test_learnable_images_carry_their_label():
    images, labels = learnable_images(4000, (3, 8, 8), seed=1, signal=0.05)
    assert images.min() >= 0 and images.max() <= 1 and set(labels.tolist()) == {0, 1}
    again, _ = learnable_images(4000, (3, 8, 8), seed=1, signal=0.05)
    assert torch.equal(images, again)
    # the class means differ along one fixed +-1 pattern by about 2 * signal per pixel
    diff = images[labels == 1].mean(0) - images[labels == 0].mean(0)
    assert diff.abs().mean().item() == pytest.approx(0.1, abs=0.02)


def test_imbalanced_blobs_exact_share():
    x, y = imbalanced_blobs(1000, 0.1, seed=3)
    assert x.shape == (1000, 2) and y.shape == (1000, 1) and y.sum().item() == 100
    # positives sit to the right: separation 2 along the first feature
    gap = (x[y[:, 0] == 1, 0].mean() - x[y[:, 0] == 0, 0].mean()).item()
    assert gap == pytest.approx(2.0, abs=0.3)
    with pytest.raises(ValueError, match="positive_fraction must be in"):
        imbalanced_blobs(100, 1.5)


def test_chance_loss():
    assert chance_loss(torch.tensor([0.0, 1.0, 1.0, 0.0])) == pytest.approx(math.log(2))
    p = 0.25
    expected = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert chance_loss(torch.tensor([1, 0, 0, 0])) == pytest.approx(expected)


def test_models():
    assert MLP()(torch.rand(5, 3, 28, 28)).shape == (5, 1)
    torch.manual_seed(0)
    with_sigmoid = MLP()
    torch.manual_seed(0)
    logits = MLP(sigmoid=False)  # same weights, no Sigmoid: its outputs are the logits
    x = torch.rand(5, 3, 28, 28)
    torch.testing.assert_close(torch.sigmoid(logits(x)), with_sigmoid(x))
    assert not torch.equal(logits(x), with_sigmoid(x))
    assert ConstantLogit()(torch.rand(7, 2)).tolist() == [[0.0]] * 7


@pytest.mark.parametrize("workers", [0, 2])
def test_seed_order_batches_match_a_shuffling_dataloader(workers):
    x = torch.arange(100.0).unsqueeze(1)
    y = torch.arange(100.0) % 2
    torch.manual_seed(5)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, num_workers=workers)
    expected = [xb.flatten().tolist() for _ in range(2) for xb, _ in loader]
    after_loader = torch.rand(1)
    torch.manual_seed(5)
    got = [xb.flatten().tolist() for _ in range(2) for xb, _ in seed_order_batches(x, y, 16)]
    assert got == expected
    assert torch.equal(torch.rand(1), after_loader), "global random state ends the same"


def test_fast_path_trains_like_the_seed_dataloader_path():
    """Same seed, same model, same data: the same loss history, batch by batch."""
    n = 320
    dataset = FakeData(n, (3, 8, 8), 2, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=32, shuffle=True)

    def seed_batches():
        for inputs, targets in loader:
            yield inputs, targets.type(torch.FloatTensor).reshape((targets.shape[0], 1))

    images, labels = fake_images(n, (3, 8, 8), 2)
    targets = labels.float().unsqueeze(1)
    torch.manual_seed(42)
    seed_history = train_seed_mlp(seed_batches, epochs=2, lr=1e-3, in_features=3 * 8 * 8)
    torch.manual_seed(42)
    fast_history = train_seed_mlp(
        lambda: seed_order_batches(images, targets, 32), epochs=2, lr=1e-3, in_features=3 * 8 * 8
    )
    assert len(fast_history) == 2 * 10
    torch.testing.assert_close(fast_history, seed_history, atol=1e-6, rtol=1e-6)


def test_circles_are_sklearns_and_keras_style_init():
    from sklearn.datasets import make_circles

    from bce_helpers.data import circles
    from bce_helpers.models import keras_style_mlp

    x, y = circles(100, 0.1, random_state=1)
    ref_x, ref_y = make_circles(n_samples=100, noise=0.1, random_state=1)
    assert torch.equal(x, torch.as_tensor(ref_x, dtype=torch.float32))
    assert y.flatten().tolist() == ref_y.tolist() and y.shape == (100, 1)
    model = keras_style_mlp()
    first, last = model[0], model[2]
    assert first.bias.abs().sum() == 0 and last.bias.abs().sum() == 0
    bound = math.sqrt(6 / (2 + 100))  # glorot-uniform limit for fan_in 2, fan_out 100
    assert first.weight.abs().max() <= bound and first.weight.abs().max() > 0.9 * bound


def adam_run(warm_up: bool) -> tuple[list[float], list[torch.Tensor]]:
    """Six Adam steps of a seeded MLP, with or without warm-up steps undone first."""
    torch.manual_seed(0)
    model = MLP(in_features=12, sigmoid=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(40, 12), torch.randint(0, 2, (40, 1)).float()

    def step(inputs, targets):
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.detach()

    if warm_up:
        warm_up_then_reset(step, model, optimizer, x[:8] * 5, y[:8], steps=3)
    losses = [step(x[i : i + 8], y[i : i + 8]).item() for i in (0, 8, 16, 24, 32, 0)]
    return losses, [p.detach().clone() for p in model.parameters()]


def test_warm_up_then_reset_leaves_training_unchanged():
    plain_losses, plain_weights = adam_run(warm_up=False)
    warm_losses, warm_weights = adam_run(warm_up=True)
    assert warm_losses == plain_losses
    assert all(torch.equal(a, b) for a, b in zip(warm_weights, plain_weights, strict=True))


def test_cuda_graph_step_refuses_what_it_cannot_record():
    model = MLP(in_features=4)
    x, y = torch.randn(8, 4), torch.ones(8, 1)
    with pytest.raises(
        ValueError, match=r"optimizer made with capturable=True, got Adam with capturable=False"
    ):
        CudaGraphStep(lambda a, b: a.sum(), model, torch.optim.Adam(model.parameters()), x, y)
    with pytest.raises(ValueError, match=r"inputs on a CUDA device, got device 'cpu'"):
        optimizer = torch.optim.Adam(model.parameters(), capturable=True)
        CudaGraphStep(lambda a, b: a.sum(), model, optimizer, x, y)


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

"""bce_helpers.data and bce_helpers.train against torchvision and DataLoader themselves."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import (
    fake_images,
    imbalanced_blobs,
    learnable_images,
    train_test_images,
)
from bce_helpers.fast.training import train_fast
from bce_helpers.fast.warm_up import warm_up_then_reset
from bce_helpers.models import MLP, ConstantLogit
from bce_helpers.train import chance_loss, criterion_for, newton_step_length, shuffled_batches


@pytest.mark.parametrize(
    ("size", "image_size", "num_classes", "offset"),
    # (3, 64, 64): 2 images per chunk, 16 per task, so 40 images make 3 tasks for the threads
    [
        (40, (3, 28, 28), 2, 0),
        (25, (1, 7, 5), 10, 1000),
        (10, (3, 224, 224), 10, 3),
        (40, (3, 64, 64), 10, 5),
    ],
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


def test_fake_images_are_the_same_with_any_number_of_workers():
    images, labels = fake_images(40, (3, 64, 64), 10, random_offset=7, workers=1)
    for workers in (2, 3, 8):
        again, again_labels = fake_images(40, (3, 64, 64), 10, random_offset=7, workers=workers)
        assert torch.equal(again, images) and torch.equal(again_labels, labels)


@pytest.mark.parametrize("size", [4, 40])  # one task; several tasks on worker threads
def test_fake_images_leave_the_global_generator_alone(size):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fake_images(size, (3, 64, 64), 2, workers=2)
    assert torch.equal(torch.rand(3), expected)


def test_train_test_images_are_the_seeds_fakedata_then_the_next_images():
    train_x, train_y, test_x, test_y = train_test_images("fakedata", 30, 12, (1, 6, 6))
    ds = FakeData(42, (1, 6, 6), 2, transform=transforms.ToTensor())
    assert torch.equal(torch.cat([train_x, test_x]), torch.stack([ds[i][0] for i in range(42)]))
    labels = [[float(ds[i][1])] for i in range(42)]
    assert train_y.tolist() == labels[:30] and test_y.tolist() == labels[30:]
    assert train_y.dtype == torch.float32


def test_train_test_images_learnable_split_one_draw():
    train_x, train_y, test_x, test_y = train_test_images("learnable", 30, 12, (3, 5, 5), seed=4)
    x, y = learnable_images(42, (3, 5, 5), seed=4)
    assert torch.equal(torch.cat([train_x, test_x]), x)
    assert torch.equal(torch.cat([train_y, test_y]), y.float().unsqueeze(1))
    with pytest.raises(ValueError, match="kind must be 'fakedata' or 'learnable', got 'mnist'"):
        train_test_images("mnist", 30, 12, (3, 5, 5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(size=0), "size must be a positive int, got 0"),
        (dict(size=4, image_size=(3, 4)), r"image_size must be three positive ints"),
        (dict(size=4, image_size=(2, 4, 4)), "1 or 3 channels"),
        (dict(size=4, num_classes=0), "num_classes must be a positive int, got 0"),
        (dict(size=4, workers=0), "workers must be a positive int or None, got 0"),
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


def guide_loop(loader, epochs, lr, in_features):
    """The loop of notebook 05's guide as it wrote it, minus its prints: every batch's loss."""
    mlp = MLP(in_features=in_features)
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


def test_train_fast_trains_as_the_guides_dataloader_loop_bit_for_bit():
    """Same seed, model, data, batches and optimizer: the same losses, batch by batch."""
    n, shape = 330, (3, 8, 8)  # 330 = 10 full batches of 32 and a short one of 10
    dataset = FakeData(n, shape, 2, transform=transforms.ToTensor())
    torch.manual_seed(42)
    guide_losses = guide_loop(DataLoader(dataset, batch_size=32, shuffle=True), 2, 1e-3, 192)
    images, targets, _, _ = train_test_images("fakedata", n, 10, shape)
    records = {}
    for fused in (False, True):
        torch.manual_seed(42)
        model = MLP(in_features=192)
        records[fused] = train_fast(
            model, criterion_for("bce"), images, targets, 2, 1e-3, 32, fused_adam=fused
        )
    plain, fused = records[False], records[True]
    assert len(plain.losses) == 2 * 11 and plain.compile_seconds is None
    assert plain.losses == guide_losses and not plain.fused_adam
    # fused Adam (torch >= 2.4 on the CPU): the same update, rounded differently
    assert fused.fused_adam
    assert max(abs(a - b) for a, b in zip(fused.losses, guide_losses, strict=True)) < 1e-5


def test_adam_falls_back_to_the_plain_one_where_torch_has_no_fused_adam(monkeypatch):
    made = []

    class OldTorchAdam(torch.optim.Adam):  # torch before 2.4 on the CPU
        def __init__(self, params, fused=None, **kwargs):
            made.append(fused)
            if fused:
                raise RuntimeError(
                    "`fused=True` requires all the params to be ... supported devices"
                )
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", OldTorchAdam)
    images, targets = torch.rand(8, 4), torch.ones(8, 1)
    torch.manual_seed(0)
    record = train_fast(MLP(in_features=4), nn.BCELoss(), images, targets, 1, 1e-3, 4)
    assert made == [True, None] and not record.fused_adam
    monkeypatch.undo()
    torch.manual_seed(0)
    plain = train_fast(
        MLP(in_features=4), nn.BCELoss(), images, targets, 1, 1e-3, 4, fused_adam=False
    )
    assert record.losses == plain.losses


@pytest.mark.parametrize("loss", ["bce", "bce_with_logits"])
def test_train_fast_warm_up_is_undone_and_timed_apart(loss):
    images, targets, _, _ = train_test_images("learnable", 100, 10, (1, 4, 4), seed=1)
    runs, steps = [], []
    for warm_up in (False, True):
        torch.manual_seed(3)
        model = MLP(in_features=16, sigmoid=loss == "bce")
        runs.append(
            train_fast(
                model,
                criterion_for(loss),
                images,
                targets,
                2,
                1e-2,
                32,
                warm_up=warm_up,
                on_step=lambda: steps.append(1),
            )
        )
    assert runs[1].losses == runs[0].losses and len(runs[0].losses) == 2 * 4
    assert runs[0].compile_seconds is None and runs[1].compile_seconds > 0
    assert len(steps) == 2 * 8, "on_step once per timed step, not for warm-up steps"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(epochs=0), "epochs must be a positive int, got 0"),
        (dict(batch_size=True), "batch_size must be a positive int, got True"),
        (dict(targets=torch.ones(3, 1)), "same number .* samples, got 8 and 3"),
        (dict(cuda_graph=True), "cuda_graph=True needs images on a CUDA device, got device 'cpu'"),
    ],
)
def test_train_fast_refuses_bad_arguments_before_training(kwargs, match):
    model = MLP(in_features=4)
    before = [p.detach().clone() for p in model.parameters()]
    args = dict(images=torch.rand(8, 4), targets=torch.ones(8, 1), epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match=match):
        train_fast(model, nn.BCELoss(), **{**args, **kwargs})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_train_fast_threads_do_not_change_the_losses_and_are_restored():
    images, targets, _, _ = train_test_images("fakedata", 200, 10, (3, 28, 28))
    before = torch.get_num_threads()
    runs = []
    for threads in (1, 2, None):
        torch.manual_seed(0)
        runs.append(train_fast(MLP(), nn.BCELoss(), images, targets, 1, 1e-3, 64, threads=threads))
        assert torch.get_num_threads() == before
    assert runs[0].losses == runs[1].losses == runs[2].losses
    with pytest.raises(ValueError, match="threads must be a positive int or None, got 0"):
        train_fast(MLP(), nn.BCELoss(), images, targets, 1, 1e-3, 64, threads=0)


def test_criterion_for_names_torchs_losses():
    logits, targets = torch.randn(6, 1), torch.rand(6, 1)
    expected = nn.functional.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(criterion_for("bce")(torch.sigmoid(logits), targets), expected)
    assert torch.equal(criterion_for("bce_with_logits")(logits, targets), expected)
    from bce_helpers.fast.fused import fused_bce_with_logits  # tested against torch in test_fused

    assert criterion_for("fused_bce_with_logits") is fused_bce_with_logits
    with pytest.raises(ValueError, match=r"loss must be one of 'bce', .*, got 'mse'"):
        criterion_for("mse")


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
        warm_up_then_reset(step, model, optimizer, [(x[:8] * 5, y[:8]), (x[:3], y[:3])], steps=3)
    losses = [step(x[i : i + 8], y[i : i + 8]).item() for i in (0, 8, 16, 24, 32, 0)]
    return losses, [p.detach().clone() for p in model.parameters()]


def test_warm_up_then_reset_leaves_training_unchanged():
    plain_losses, plain_weights = adam_run(warm_up=False)
    warm_losses, warm_weights = adam_run(warm_up=True)
    assert warm_losses == plain_losses
    assert all(torch.equal(a, b) for a, b in zip(warm_weights, plain_weights, strict=True))


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

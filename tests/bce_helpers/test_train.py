"""bce_helpers.data and bce_helpers.train: values checked against torch, torchvision,
scikit-learn, hand computations, and properties any correct implementation has."""

import math
import time

import pytest
import torch
from torch import nn
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import (
    as_targets,
    circles,
    fake_images,
    imbalanced_blobs,
    learnable_images,
    train_test_images,
)
from bce_helpers.fast.training import adam, train_fast
from bce_helpers.fast.warm_up import warm_up_then_reset
from bce_helpers.train import (
    chance_loss,
    criterion_for,
    newton_step_length,
    shuffled_batches,
    training_step,
)

# A device that exists on every machine, CPU-only ones included, and is not the CPU: a tensor
# moved there keeps its shape and dtype, so "on the requested device" can be checked anywhere.
META = torch.device("meta")


def fakedata(size, image_size, num_classes=None, offset=0):
    """torchvision's FakeData + ToTensor, stacked: (images, labels)."""
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    ds = FakeData(size, image_size, transform=transforms.ToTensor(), random_offset=offset, **kwargs)
    items = [ds[i] for i in range(size)]
    return torch.stack([x for x, _ in items]), [y for _, y in items]


# --- imbalanced_blobs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "fraction"), [(2, 0.5), (3, 0.5), (5, 0.5), (7, 0.3), (11, 0.95), (1000, 0.1)]
)
def test_imbalanced_blobs_have_exactly_the_rounded_share_of_positives(n, fraction):
    x, y = imbalanced_blobs(n, fraction, seed=1)
    assert x.shape == (n, 2) and y.shape == (n, 1)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert set(y.flatten().tolist()) <= {0.0, 1.0}
    assert y.sum().item() == round(n * fraction)  # Python's round, as the docstring says


def test_imbalanced_blobs_are_two_unit_variance_gaussians_at_plus_minus_half_separation():
    n, fraction, separation = 4000, 0.25, 3.0
    x, y = imbalanced_blobs(n, fraction, separation=separation, seed=2)
    for label, sign, count in ((1.0, 1, 1000), (0.0, -1, 3000)):
        cls = x[y[:, 0] == label]
        assert len(cls) == count
        se_mean, se_std = 1 / math.sqrt(count), 1 / math.sqrt(2 * count)
        mean, std = cls.mean(0).tolist(), cls.std(0).tolist()
        assert mean[0] == pytest.approx(sign * separation / 2, abs=5 * se_mean)
        assert mean[1] == pytest.approx(0.0, abs=5 * se_mean)  # separated along x only
        assert std == pytest.approx([1.0, 1.0], abs=5 * se_std)
        # unit variance means independent noise per sample, not one draw broadcast to all
        assert torch.unique(cls[:, 1]).numel() == count


def test_imbalanced_blobs_are_shuffled():
    _, y = imbalanced_blobs(200, 0.5, seed=0)
    first_half = y[:100].sum().item()
    assert 0 < first_half < 100, "positives are spread, not the first round(n * fraction)"


def test_imbalanced_blobs_depend_on_their_seed_only():
    torch.manual_seed(0)
    expected_global = torch.rand(3)
    torch.manual_seed(0)
    a = imbalanced_blobs(50, 0.3, seed=5)
    assert torch.equal(torch.rand(3), expected_global), "the global generator is left alone"
    torch.manual_seed(123)  # another global state: the same data
    b = imbalanced_blobs(50, 0.3, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = imbalanced_blobs(50, 0.3, seed=6)
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_imbalanced_blobs_land_on_the_requested_device():
    x, y = imbalanced_blobs(10, 0.3, device=META)
    assert x.device == META and y.device == META
    assert x.shape == (10, 2) and y.shape == (10, 1)
    x, y = imbalanced_blobs(10, 0.3)
    assert x.device.type == "cpu" and y.device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(n_samples=10, positive_fraction=0.0),
            r"positive_fraction must be in \(0, 1\), got 0",
        ),
        (
            dict(n_samples=10, positive_fraction=1.0),
            r"positive_fraction must be in \(0, 1\), got 1",
        ),
        (dict(n_samples=10, positive_fraction=-0.5), r"positive_fraction .*, got -0.5"),
        (dict(n_samples=1, positive_fraction=0.5), r"n_samples must be >= 2, got 1$"),
        (dict(n_samples=0, positive_fraction=0.5), r"n_samples must be >= 2, got 0$"),
    ],
)
def test_imbalanced_blobs_refuse_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        imbalanced_blobs(**kwargs)


# --- fake_images and the image argument checks ------------------------------------------------


def test_fake_images_smallest_sizes_equal_fakedata():
    images, labels = fake_images(1, (1, 3, 2), num_classes=1)
    ref_images, ref_labels = fakedata(1, (1, 3, 2), num_classes=1)
    assert torch.equal(images, ref_images) and labels.tolist() == ref_labels == [0]


def test_fake_images_default_classes_are_fakedatas():
    images, labels = fake_images(40, (1, 4, 4))
    ref_images, ref_labels = fakedata(40, (1, 4, 4))  # FakeData's own default: 10 classes
    assert torch.equal(images, ref_images) and labels.tolist() == ref_labels
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(size=True), "size must be a positive int, got True"),
        (dict(size=2.5), "size must be a positive int, got 2.5"),
        (dict(size=-3), "size must be a positive int, got -3"),
        (dict(size=2, image_size=(3, 0, 4)), r"three positive ints \(C, H, W\), got \(3, 0, 4\)"),
        (dict(size=2, image_size=(3, 4.0, 4)), r"three positive ints .*, got \(3, 4.0, 4\)"),
        (dict(size=2, image_size=(1, 2, 2, 2)), r"three positive ints .*, got \(1, 2, 2, 2\)"),
        (dict(size=2, image_size=(4, 2, 2)), r"1 or 3 channels .*, got \(4, 2, 2\)"),
        (dict(size=2, num_classes=True), "num_classes must be a positive int, got True"),
        (dict(size=2, num_classes=2.0), "num_classes must be a positive int, got 2.0"),
        (dict(size=2, num_classes=-1), "num_classes must be a positive int, got -1"),
        (dict(size=2, workers=True), "workers must be a positive int or None, got True"),
        (dict(size=2, workers=1.0), "workers must be a positive int or None, got 1.0"),
        (dict(size=2, workers=-2), "workers must be a positive int or None, got -2"),
    ],
)
def test_fake_images_refuse_bad_arguments_naming_argument_and_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fake_images(**{"image_size": (1, 2, 2), **kwargs})


def test_learnable_images_check_their_arguments_too():
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        learnable_images(0, (1, 2, 2))
    with pytest.raises(ValueError, match=r"1 or 3 channels .*, got \(2, 2, 2\)"):
        learnable_images(3, (2, 2, 2))
    images, labels = learnable_images(1, (1, 2, 3))  # the smallest size is fine
    assert images.shape == (1, 1, 2, 3) and labels.shape == (1,)


# --- learnable_images -------------------------------------------------------------------------


def clipped_moments(shift: float) -> tuple[float, float]:
    """Mean and variance of clamp(U + shift, 0, 1) for U uniform on [0, 1], |shift| <= 1."""
    s = abs(shift)
    mean = 0.5 + s - s * s / 2  # (1 - s)^2 / 2 + s (1 - s) + s
    second = (1 - s**3) / 3 + s
    var = second - mean * mean
    return (mean if shift >= 0 else 1 - mean), var  # U + s and 1 - (U' + s): mirror images


@pytest.mark.parametrize("signal", [None, 0.3])  # None: the documented default, 0.1
def test_learnable_images_are_clipped_uniform_noise_plus_minus_signal_times_a_pattern(signal):
    n, shape = 4000, (3, 6, 6)
    kwargs = {} if signal is None else {"signal": signal}
    s = 0.1 if signal is None else signal
    images, labels = learnable_images(n, shape, seed=1, **kwargs)
    assert images.shape == (n, *shape) and images.dtype == torch.float32
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert images.min().item() >= 0 and images.max().item() <= 1
    ones = int(labels.sum())
    assert set(labels.tolist()) == {0, 1} and abs(ones - n / 2) < 5 * math.sqrt(n) / 2
    m1, m0 = images[labels == 1].mean(0), images[labels == 0].mean(0)
    high, var = clipped_moments(s)
    # per pixel: label 1 is U + s p, label 0 is U - s p, p = +-1 fixed; tolerance 5 sigma
    tol = 5 * math.sqrt(var / min(ones, n - ones))
    pattern = torch.sign(m1 - m0)
    assert torch.allclose(m1, 0.5 + (high - 0.5) * pattern, atol=tol)
    assert torch.allclose(m0, 0.5 - (high - 0.5) * pattern, atol=tol)
    plus = (pattern > 0).float().mean().item()
    assert 0.25 < plus < 0.75, "the pattern is random +-1, not a constant"
    within = torch.cat([images[labels == 1] - m1, images[labels == 0] - m0])
    assert within.pow(2).mean().item() == pytest.approx(var, abs=0.004)
    assert images.eq(0).any() and images.eq(1).any(), "clipped at both ends"


def test_learnable_images_pattern_is_fixed_and_seeded():
    a, la = learnable_images(300, (1, 4, 4), seed=3)
    b, lb = learnable_images(300, (1, 4, 4), seed=3)
    c, _ = learnable_images(300, (1, 4, 4), seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)


# --- as_targets, train_test_images, circles ---------------------------------------------------


def test_as_targets_are_float_columns_on_the_device():
    labels = torch.tensor([0, 1, 1, 0, 1])
    targets = as_targets(labels)
    assert targets.dtype == torch.float32 and targets.device.type == "cpu"
    assert targets.tolist() == [[0.0], [1.0], [1.0], [0.0], [1.0]]
    on_meta = as_targets(labels, META)
    assert on_meta.device == META and on_meta.shape == (5, 1) and on_meta.dtype == torch.float32


@pytest.mark.parametrize("kind", ["fakedata", "learnable"])
def test_train_test_images_all_land_on_the_requested_device(kind):
    shape = (1, 3, 3)
    out = train_test_images(kind, 6, 4, shape, seed=2, device=META)
    assert [t.device for t in out] == [META] * 4
    assert [tuple(t.shape) for t in out] == [(6, *shape), (6, 1), (4, *shape), (4, 1)]
    assert all(t.dtype == torch.float32 for t in out)
    on_cpu = train_test_images(kind, 6, 4, shape, seed=2)
    assert [t.device.type for t in on_cpu] == ["cpu"] * 4


def test_circles_default_is_the_seeds_make_circles_call():
    from sklearn.datasets import make_circles

    x, y = circles()
    # notebook 06 reproduces the guide's make_circles(n_samples=1000, noise=0.1, random_state=1)
    ref_x, ref_y = make_circles(n_samples=1000, noise=0.1, random_state=1)
    assert x.dtype == torch.float32 and y.dtype == torch.float32 and y.shape == (1000, 1)
    assert torch.equal(x, torch.as_tensor(ref_x, dtype=torch.float32))
    assert y.flatten().tolist() == ref_y.tolist()


def test_circles_pass_their_arguments_to_make_circles():
    from sklearn.datasets import make_circles

    x, y = circles(37, 0.25, random_state=4)
    ref_x, ref_y = make_circles(n_samples=37, noise=0.25, random_state=4)
    assert x.shape == (37, 2) and y.shape == (37, 1) and y.dtype == torch.float32
    assert torch.equal(x, torch.as_tensor(ref_x, dtype=torch.float32))
    assert y.flatten().tolist() == ref_y.tolist()


# --- train: chance_loss, newton_step_length, adam, criterion_for ------------------------------


def entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_chance_loss_is_the_label_entropy_and_zero_for_one_class():
    assert chance_loss(torch.tensor([1, 1, 1, 0])) == pytest.approx(entropy(0.75))
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


def test_newton_step_length_is_inf_where_the_loss_is_flat():
    # all-zero inputs: the loss does not depend on the weights, the Hessian is singular
    model = nn.Linear(2, 1)
    y = torch.tensor([[1.0], [0.0], [1.0]])
    loss = nn.BCEWithLogitsLoss()
    assert newton_step_length(model, lambda out: loss(out, y), torch.zeros(3, 2)) == math.inf


@pytest.mark.parametrize("cuda_graph", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_adam_is_torchs_adam_with_the_requested_options(cuda_graph, fused):
    model = nn.Linear(3, 1)
    optimizer = adam(model, 0.05, cuda_graph=cuda_graph, fused=fused)
    assert type(optimizer) is torch.optim.Adam
    assert optimizer.defaults["lr"] == 0.05
    assert optimizer.defaults["capturable"] is cuda_graph
    assert bool(optimizer.defaults["fused"]) is fused  # torch >= 2.4 has a fused CPU Adam
    params = optimizer.param_groups[0]["params"]
    assert len(params) == 2 and all(a is b for a, b in zip(params, model.parameters(), strict=True))


def test_adam_defaults_fused_and_not_capturable():
    optimizer = adam(nn.Linear(2, 1), 0.1)
    assert optimizer.defaults["fused"] and not optimizer.defaults["capturable"]


def test_criterion_for_returns_torchs_loss_modules_and_names_every_choice():
    assert type(criterion_for("bce")) is nn.BCELoss
    assert type(criterion_for("bce_with_logits")) is nn.BCEWithLogitsLoss
    with pytest.raises(ValueError) as refused:
        criterion_for("BCE")
    assert str(refused.value) == (
        "loss must be one of 'bce', 'bce_with_logits', 'fused_bce_with_logits', got 'BCE'"
    )


# --- train: warm_up_then_reset, shuffled_batches, train_fast --------------------------------


def test_warm_up_then_reset_runs_steps_per_batch_then_restores_weights_and_adam_state():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    step = training_step(model, nn.BCEWithLogitsLoss(), optimizer)
    seen = []

    def counting_step(inputs, targets):
        seen.append(len(inputs))
        return step(inputs, targets)

    x, y = torch.randn(6, 3), torch.ones(6, 1)
    warm_up_then_reset(counting_step, model, optimizer, [(x, y), (x[:2], y[:2])], steps=2)
    assert seen == [6, 6, 2, 2]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    state = [v for s in optimizer.state.values() for v in s.values()]
    assert len(state) == 2 * 3  # step, exp_avg, exp_avg_sq for weight and bias
    assert all(torch.count_nonzero(v) == 0 for v in state), "a fresh Adam's state: zeros"


def test_shuffled_batches_cover_every_sample_once_in_batches_of_the_size():
    x = torch.arange(23.0).unsqueeze(1)
    y = -x
    torch.manual_seed(1)
    batches = list(shuffled_batches(x, y, 5))
    assert [len(b) for b, _ in batches] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat([b for b, _ in batches]).flatten().tolist()) == list(range(23))
    assert all(torch.equal(t, -b) for b, t in batches), "inputs and targets stay paired"


def fit_args(n=10, features=3):
    g = torch.Generator().manual_seed(n)
    images = torch.randn(n, features, generator=g)
    targets = (torch.rand(n, 1, generator=g) < 0.5).float()
    return nn.Linear(features, 1), nn.BCEWithLogitsLoss(), images, targets


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=True), "epochs must be a positive int, got True"),
        (dict(epochs=1.0), "epochs must be a positive int, got 1.0"),
        (dict(epochs=-1), "epochs must be a positive int, got -1"),
        (dict(batch_size=0), "batch_size must be a positive int, got 0"),
        (dict(batch_size=2.0), "batch_size must be a positive int, got 2.0"),
        (dict(threads=True), "threads must be a positive int or None, got True"),
        (dict(threads=1.0), "threads must be a positive int or None, got 1.0"),
        (dict(threads=-1), "threads must be a positive int or None, got -1"),
    ],
)
def test_train_fast_refusals_name_argument_value_and_what_is_allowed(kwargs, message):
    model, loss, images, targets = fit_args()
    args = {**dict(epochs=1, lr=0.1, batch_size=4), **kwargs}
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, images, targets, **args)
    assert str(refused.value) == message


@pytest.mark.parametrize(("n_images", "n_targets"), [(0, 0), (5, 4)])
def test_train_fast_refuses_sample_counts_that_differ_or_are_zero(n_images, n_targets):
    model, loss, _, _ = fit_args()
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, torch.rand(n_images, 3), torch.ones(n_targets, 1), 1, 0.1, 4)
    assert str(refused.value) == (
        "images and targets must hold the same number (at least 1) of samples, got "
        f"{n_images} and {n_targets}"
    )


def test_train_fast_refuses_a_cuda_graph_off_cuda_naming_the_device():
    model, loss, images, targets = fit_args()
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, images, targets, 1, 0.1, 4, cuda_graph=True)
    assert str(refused.value) == "cuda_graph=True needs images on a CUDA device, got device 'cpu'"


@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (2, 2), (None, "outside"), ("-", 1)])
def test_train_fast_trains_on_the_requested_threads_and_restores_torchs_setting(threads, expected):
    """threads="-": not passed, the documented default of one thread on the CPU."""
    model, loss, images, targets = fit_args()
    before = torch.get_num_threads()
    outside = 3 if before != 3 else 4  # differs from every value tested
    kwargs = {} if threads == "-" else {"threads": threads}
    torch.set_num_threads(outside)
    try:
        during = []
        on_step = lambda: during.append(torch.get_num_threads())  # noqa: E731
        train_fast(model, loss, images, targets, 1, 0.1, 4, on_step=on_step, **kwargs)
        assert during == [outside if expected == "outside" else expected] * 3
        assert torch.get_num_threads() == outside
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("n", "batch_size", "shapes"), [(10, 4, {4, 2}), (8, 4, {4}), (3, 4, {3}), (9, 9, {9})]
)
def test_train_fast_warm_up_sees_every_batch_shape_of_training_and_is_undone(n, batch_size, shapes):
    records = {}
    for warm_up in (False, True):
        torch.manual_seed(7)  # the same initial weights and batch order for both runs
        model, loss, images, targets = fit_args(n)
        sizes = []

        def criterion(out, tgt, sizes=sizes, loss=loss):
            sizes.append(len(out))
            return loss(out, tgt)

        records[warm_up] = train_fast(
            model, criterion, images, targets, 2, 0.05, batch_size, warm_up=warm_up
        )
        steps = 2 * math.ceil(n / batch_size)
        training = sizes[len(sizes) - steps :]
        assert set(training) == shapes and sum(training) == 2 * n
        assert set(sizes[: len(sizes) - steps]) == (shapes if warm_up else set())
    plain, warm = records[False], records[True]
    assert warm.losses == plain.losses and len(plain.losses) == 2 * math.ceil(n / batch_size)
    assert all(isinstance(v, float) for v in plain.losses)
    assert plain.compile_seconds is None and warm.compile_seconds > 0
    assert plain.train_seconds > 0 and warm.train_seconds > 0


@pytest.mark.parametrize("fused", [False, True])
def test_train_fast_reports_which_adam_trained(fused):
    model, loss, images, targets = fit_args()
    record = train_fast(model, loss, images, targets, 1, 0.1, 5, fused_adam=fused)
    assert record.fused_adam is fused and len(record.losses) == 2


def test_train_fast_times_add_up_to_at_most_the_wall_clock():
    model, loss, images, targets = fit_args(40)
    start = time.perf_counter()
    record = train_fast(model, loss, images, targets, 2, 0.1, 8, warm_up=True)
    elapsed = time.perf_counter() - start
    assert record.compile_seconds > 0 and record.train_seconds > 0
    assert record.compile_seconds + record.train_seconds <= elapsed


def test_train_fast_trains_on_a_single_sample():
    model, loss, images, targets = fit_args(1)
    record = train_fast(model, loss, images, targets, 3, 0.1, 4)
    assert len(record.losses) == 3 and all(math.isfinite(v) for v in record.losses)

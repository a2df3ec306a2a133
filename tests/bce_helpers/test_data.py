"""bce_helpers.data against torchvision's FakeData, scikit-learn's make_circles, hand-computed
moments, and properties any correct implementation has."""

import math

import pytest
import torch
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


def test_imbalanced_blobs_default_to_separation_2_drawn_from_seed_0():
    x, y = imbalanced_blobs(4000, 0.25)
    gap = (x[y[:, 0] == 1, 0].mean() - x[y[:, 0] == 0, 0].mean()).item()
    se = math.sqrt(1 / 1000 + 1 / 3000)  # of a difference of two means of unit variance
    assert gap == pytest.approx(2.0, abs=5 * se)
    again = imbalanced_blobs(4000, 0.25, separation=2.0, seed=0)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


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
        (dict(size=0), "size must be a positive int, got 0"),
        (dict(size=True), "size must be a positive int, got True"),
        (dict(size=2.5), "size must be a positive int, got 2.5"),
        (dict(size=-3), "size must be a positive int, got -3"),
        (dict(size=2, image_size=(3, 0, 4)), r"three positive ints \(C, H, W\), got \(3, 0, 4\)"),
        (dict(size=2, image_size=(3, 4.0, 4)), r"three positive ints .*, got \(3, 4.0, 4\)"),
        (dict(size=2, image_size=(1, 2, 2, 2)), r"three positive ints .*, got \(1, 2, 2, 2\)"),
        (dict(size=2, image_size=(3, 4)), r"three positive ints .*, got \(3, 4\)"),
        (dict(size=2, image_size=(4, 2, 2)), r"1 or 3 channels .*, got \(4, 2, 2\)"),
        (dict(size=2, num_classes=0), "num_classes must be a positive int, got 0"),
        (dict(size=2, num_classes=True), "num_classes must be a positive int, got True"),
        (dict(size=2, num_classes=2.0), "num_classes must be a positive int, got 2.0"),
        (dict(size=2, num_classes=-1), "num_classes must be a positive int, got -1"),
        (dict(size=2, workers=0), "workers must be a positive int or None, got 0"),
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


@pytest.mark.parametrize(
    ("size", "image_size", "num_classes", "offset"),
    # (3, 64, 64): 2 images fill the drawing buffer, so 40 images take many buffers per thread
    [
        (40, (3, 28, 28), 2, 0),
        (25, (1, 7, 5), 10, 1000),
        (10, (3, 224, 224), 10, 3),
        (40, (3, 64, 64), 10, 5),
    ],
)
def test_fake_images_equal_torchvision_fakedata(size, image_size, num_classes, offset):
    images, labels = fake_images(size, image_size, num_classes, random_offset=offset)
    ref_images, ref_labels = fakedata(size, image_size, num_classes, offset)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.shape == (size, *image_size) and labels.shape == (size,)
    assert torch.equal(images, ref_images) and labels.tolist() == ref_labels


def test_fake_images_are_the_same_with_any_number_of_workers():
    images, labels = fake_images(40, (3, 64, 64), 10, random_offset=7, workers=1)
    for workers in (2, 3, 8, 40, 100):
        again, again_labels = fake_images(40, (3, 64, 64), 10, random_offset=7, workers=workers)
        assert torch.equal(again, images) and torch.equal(again_labels, labels)


@pytest.mark.parametrize("size", [4, 40])  # one buffer per thread; many buffers per thread
def test_fake_images_leave_the_global_generator_alone(size):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fake_images(size, (3, 64, 64), 2, workers=2)
    assert torch.equal(torch.rand(3), expected)


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
    default, labels = learnable_images(300, (1, 4, 4))
    zero, zero_labels = learnable_images(300, (1, 4, 4), seed=0)
    assert torch.equal(default, zero) and torch.equal(labels, zero_labels), "seed 0 by default"


# --- as_targets, train_test_images, circles -------------------------------------------------


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


def test_train_test_images_are_fakedatas_first_images_then_the_next_ones():
    train_x, train_y, test_x, test_y = train_test_images("fakedata", 30, 12, (1, 6, 6))
    ref_images, ref_labels = fakedata(42, (1, 6, 6), num_classes=2)
    assert torch.equal(torch.cat([train_x, test_x]), ref_images)
    labels = [[float(label)] for label in ref_labels]
    assert train_y.tolist() == labels[:30] and test_y.tolist() == labels[30:]
    assert train_y.dtype == torch.float32


def test_train_test_images_learnable_split_one_draw():
    train_x, train_y, test_x, test_y = train_test_images("learnable", 30, 12, (3, 5, 5), seed=4)
    x, y = learnable_images(42, (3, 5, 5), seed=4)
    assert torch.equal(torch.cat([train_x, test_x]), x)
    assert torch.equal(torch.cat([train_y, test_y]), y.float().unsqueeze(1))
    default = train_test_images("learnable", 30, 12, (3, 5, 5))
    seed_0 = train_test_images("learnable", 30, 12, (3, 5, 5), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(default, seed_0, strict=True)), "seed 0"
    with pytest.raises(ValueError) as refused:
        train_test_images("mnist", 30, 12, (3, 5, 5))
    assert str(refused.value) == "kind must be 'fakedata' or 'learnable', got 'mnist'"


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

"""Data the notebooks train on, made in memory from a seed: nothing is downloaded."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import torch


def imbalanced_blobs(
    n_samples: int,
    positive_fraction: float,
    separation: float = 2.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit-variance 2-D Gaussian classes, a given fraction positive, shuffled.

    Returns float32 features [N, 2] and float32 labels [N, 1]. Exactly
    round(n_samples * positive_fraction) labels are 1. With equal covariances, the true
    log-odds are linear in the features, so logistic regression is the right model.
    """
    if not 0 < positive_fraction < 1:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction!r}")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples!r}")
    g = torch.Generator().manual_seed(seed)
    n_pos = round(n_samples * positive_fraction)
    labels = torch.zeros(n_samples, 1)
    labels[:n_pos] = 1.0
    centre = torch.tensor([separation / 2, 0.0])
    features = torch.randn(n_samples, 2, generator=g) + torch.where(labels == 1, centre, -centre)
    order = torch.randperm(n_samples, generator=g)
    return features[order].to(device), labels[order].to(device)


def _check_image_args(size: int, image_size: tuple[int, int, int], num_classes: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if len(image_size) != 3 or any(not isinstance(n, int) or n < 1 for n in image_size):
        raise ValueError(f"image_size must be three positive ints (C, H, W), got {image_size!r}")
    if image_size[0] not in (1, 3):
        raise ValueError(
            f"image_size must have 1 or 3 channels (as PIL images), got {image_size!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


# Images are drawn into a small buffer and converted together, as many as fit in torch's
# intra-op grain size (32,768 values; at least one): the buffer stays in cache, and for
# images of up to that size no op is large enough to start threads of its own inside a worker.
_GRAIN = 32_768


def _draw_images(
    images: torch.Tensor, labels: torch.Tensor, start: int, stop: int, offset: int, classes: int
) -> None:
    """Fill images[start:stop] and labels[start:stop] as FakeData + ToTensor would."""
    g = torch.Generator()
    seed, normal_, random_ = g.manual_seed, torch.Tensor.normal_, torch.Tensor.random_
    flat = images.view(len(images), -1)
    rows = max(1, _GRAIN // flat.shape[1])
    noise = torch.empty(min(rows, stop - start), flat.shape[1])  # reused: stays in cache
    noise_rows = noise.unbind(0)
    as_int = torch.empty(noise.shape, dtype=torch.int32)
    as_bytes = torch.empty(noise.shape, dtype=torch.uint8)
    for first in range(start, stop, rows):
        last = min(first + rows, stop)
        n = last - first
        i = first + offset
        for row, label in zip(noise_rows[:n], labels[first:last].unbind(0), strict=True):
            seed(i)  # FakeData: torch.manual_seed(index + random_offset)
            normal_(row, generator=g)  # what torch.randn does to the tensor it makes
            random_(label, 0, classes, generator=g)  # and torch.randint(0, classes, (1,))
            i += 1
        # ToPILImage: mul(255) then a cast to uint8, which torch makes through int64 (truncates,
        # wraps negatives); through int32 it is the same (|255 z| < 1,500 for any z normal_
        # draws) with half the bytes to move. ToTensor: to float32, / 255 (computed in float32)
        as_int[:n].copy_(noise[:n].mul_(255))
        as_bytes[:n].copy_(as_int[:n])
        torch.div(as_bytes[:n], 255, out=flat[first:last])


def fake_images(
    size: int,
    image_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 10,
    random_offset: int = 0,
    workers: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's FakeData with ToTensor, bit for bit, without a PIL round trip per image.

    Returns float32 images [N, C, H, W] in [0, 1] and int64 labels [N]. Like FakeData,
    image i is drawn from a generator seeded with i + random_offset (then its label), so
    images are independent: `workers` threads (default torch.get_num_threads()) draw them
    side by side, each a block of images at a time. The global random state is left
    untouched.
    """
    _check_image_args(size, tuple(image_size), num_classes)
    if workers is None:
        workers = torch.get_num_threads()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    images = torch.empty(size, *image_size)
    labels = torch.empty(size, dtype=torch.long)
    workers = min(workers, size)
    bounds = [size * k // workers for k in range(workers + 1)]  # one block per worker
    if workers == 1:
        _draw_images(images, labels, 0, size, random_offset, num_classes)
        return images, labels
    with ThreadPoolExecutor(workers) as pool:  # torch ops release the GIL
        tasks = [
            pool.submit(_draw_images, images, labels, start, stop, random_offset, num_classes)
            for start, stop in itertools.pairwise(bounds)
        ]
        for task in tasks:
            task.result()  # re-raises a worker's exception here
    return images, labels


def learnable_images(
    size: int,
    image_size: tuple[int, int, int] = (3, 28, 28),
    seed: int = 0,
    signal: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images whose binary label can be seen in the pixels.

    Each image is uniform noise in [0, 1] plus or minus `signal` times one fixed random
    +-1 pattern, plus for label 1 and minus for label 0, clipped to [0, 1].
    """
    _check_image_args(size, tuple(image_size), 2)
    g = torch.Generator().manual_seed(seed)
    pattern = torch.randint(0, 2, tuple(image_size), generator=g).float() * 2 - 1
    labels = torch.randint(0, 2, (size,), generator=g)
    images = torch.rand(size, *image_size, generator=g)
    sign = (labels.float() * 2 - 1).view(-1, 1, 1, 1)
    return (images + signal * sign * pattern).clamp_(0, 1), labels


def as_targets(labels: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Integer labels [N] as float targets [N, 1] on `device`, as BCE wants them."""
    return labels.float().unsqueeze(1).to(device)


def train_test_images(
    kind: str,
    n_train: int,
    n_test: int,
    image_size: tuple[int, int, int],
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Notebook 05's data: training and test images on `device`, float targets [N, 1].

    kind "fakedata": the guide's FakeData images 0..n_train-1 (2 classes), and the n_test
    that follow them as the test set; kind "learnable": `learnable_images` from `seed`,
    the first n_train for training and the rest for testing.
    """
    if kind not in ("fakedata", "learnable"):
        raise ValueError(f"kind must be 'fakedata' or 'learnable', got {kind!r}")
    if kind == "fakedata":
        train_x, train_y = fake_images(n_train, image_size, num_classes=2)
        test_x, test_y = fake_images(n_test, image_size, num_classes=2, random_offset=n_train)
    else:
        x, y = learnable_images(n_train + n_test, image_size, seed=seed)
        train_x, test_x, train_y, test_y = x[:n_train], x[n_train:], y[:n_train], y[n_train:]
    return (
        train_x.to(device),
        as_targets(train_y, device),
        test_x.to(device),
        as_targets(test_y, device),
    )


def circles(
    n_samples: int = 1000, noise: float = 0.1, random_state: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's make_circles as float32 tensors: features [N, 2], labels [N, 1]."""
    from sklearn.datasets import make_circles

    features, labels = make_circles(n_samples=n_samples, noise=noise, random_state=random_state)
    return (
        torch.as_tensor(features, dtype=torch.float32),
        torch.as_tensor(labels, dtype=torch.float32).unsqueeze(1),
    )

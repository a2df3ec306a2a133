"""Data the notebooks train on, made in memory from a seed: nothing is downloaded."""

from __future__ import annotations

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


def fake_images(
    size: int,
    image_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 10,
    random_offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's FakeData with ToTensor, bit for bit, without a PIL round trip per image.

    Returns float32 images [N, C, H, W] in [0, 1] and int64 labels [N]. Like FakeData,
    image i is drawn from a generator seeded with i + random_offset; the labels are
    random, so no model can predict them. The global random state is left untouched.
    """
    _check_image_args(size, tuple(image_size), num_classes)
    g = torch.Generator()
    images = torch.empty(size, *image_size)
    labels = torch.empty(size, dtype=torch.long)
    for i in range(size):
        g.manual_seed(i + random_offset)
        torch.randn(tuple(image_size), generator=g, out=images[i])
        labels[i] = torch.randint(0, num_classes, (1,), generator=g)[0]
    # ToPILImage: float -> mul(255).byte() (truncates, and wraps negatives); ToTensor: / 255
    return images.mul_(255).byte().float().div_(255), labels


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

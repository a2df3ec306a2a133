"""Seed 002's MLP run (FakeData through a DataLoader) against the suite's fast path.

Both train the seed's MLP (2352 -> 64 -> 32 -> 1, Sigmoid, BCELoss, Adam lr 1e-4, batch
64, 3 epochs, 15,000 FakeData images of 3x28x28) from torch.manual_seed(42), in one run,
and this prints both times (data creation plus training) and the ratio. Each is the
fastest of --repeats runs, the two taking turns, so that a busy spell of a shared machine
does not decide the ratio. Usage:

    .venv/bin/python benchmarks/bench_mlp_training.py [--epochs 3] [--n-samples 15000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import fake_images
from bce_helpers.train import seed_order_batches, train_seed_mlp


def seed_code(n_samples: int, epochs: int) -> float:
    """The seed's own code, minus its prints: FakeData + ToTensor via a 4-worker DataLoader."""
    start = time.perf_counter()
    torch.manual_seed(42)
    dataset = FakeData(
        size=n_samples, image_size=(3, 28, 28), num_classes=2, transform=transforms.ToTensor()
    )
    trainloader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=4, pin_memory=True)

    def epoch_batches():
        for inputs, targets in trainloader:
            yield inputs, targets.type(torch.FloatTensor).reshape((targets.shape[0], 1))

    train_seed_mlp(epoch_batches, epochs)
    return time.perf_counter() - start


def fast_path(n_samples: int, epochs: int) -> tuple[float, float]:
    """The suite's path: vectorised FakeData in memory, pre-shuffled contiguous batches."""
    start = time.perf_counter()
    torch.manual_seed(42)
    images, labels = fake_images(n_samples, (3, 28, 28), num_classes=2)
    data_seconds = time.perf_counter() - start
    targets = labels.float().unsqueeze(1)
    train_seed_mlp(lambda: seed_order_batches(images, targets, 64), epochs)
    return data_seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=15_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    seed_runs, fast_runs = [], []
    for _ in range(args.repeats):
        seed_runs.append(seed_code(args.n_samples, args.epochs))
        fast_runs.append(fast_path(args.n_samples, args.epochs))
    seed_seconds = min(seed_runs)
    data_seconds, fast_seconds = min(fast_runs, key=lambda run: run[1])
    print(f"fastest of {args.repeats} runs each")
    print(f"seed's code (FakeData, DataLoader workers=4): {seed_seconds:6.2f} s")
    print(
        f"fast path (fake_images + in-memory batches):  {fast_seconds:6.2f} s "
        f"({data_seconds:.2f} s data, {fast_seconds - data_seconds:.2f} s training)"
    )
    print(f"ratio: {seed_seconds / fast_seconds:.1f}x (goal: at least 12x)")


if __name__ == "__main__":
    main()

"""Seed 002's MLP run, as the seed wrote it, against notebook 05's own path, side by side.

Both train the seed's MLP (2352 -> 64 -> 32 -> 1, Adam lr 1e-4, batch 64, 3 epochs,
15,000 FakeData images of 3x28x28) from torch.manual_seed(42), in one process:

- the seed's code: FakeData + ToTensor through a DataLoader with 4 workers and
  pin_memory, BCELoss, .item() per batch; on CUDA the model and each batch moved to the
  GPU, as a user of the seed would;
- notebook 05's path, through the very functions the notebook calls: `train_test_images`
  (the training images and the held-out ones, as the notebook's `data_seconds` counts
  them), `criterion_for`, and `fit` (the seed's batches, the step, the CUDA graph, and
  its default fused Adam: the notebook checks its losses against the plain Adam's).
  `fit` warms up and records before its clock starts: that time is printed on its own.

Each figure is the fastest of --repeats runs, the contenders taking turns, so that a busy
spell of a shared machine does not decide the ratio; the load average is printed with
them. The data side (`fake_images` against torchvision's FakeData item by item, the seed's
15,000 images) is timed the same way.

Goals: on the suite's 2-core CPU, fake_images at least 20x FakeData item by item, and
notebook 05 (data + training) at least 12x the seed's code; on an H100 data + training at
least 20x the seed's code, training alone at most 0.25 s with cuda_graph=True, and the
fused loss with the graph no slower than bce_with_logits with the graph. Usage:

    .venv/bin/python benchmarks/bench_mlp_training.py [--device cpu] [--repeats 3]
    .venv/bin/python benchmarks/bench_mlp_training.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import fake_images, train_test_images
from bce_helpers.models import MLP
from bce_helpers.params import resolve_device
from bce_helpers.train import criterion_for, fit

IMAGE = (3, 28, 28)
SEED, LR, BATCH, TEST_FRACTION = 42, 1e-4, 64, 0.2  # notebook 05's defaults (the seed's)


def seed_code(n_samples: int, epochs: int, device: torch.device) -> float:
    """Seconds of the seed's own code, minus its prints, with the model on `device`."""
    start = time.perf_counter()
    torch.manual_seed(SEED)
    dataset = FakeData(
        size=n_samples, image_size=IMAGE, num_classes=2, transform=transforms.ToTensor()
    )
    trainloader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=4, pin_memory=True
    )
    mlp = MLP().to(device)
    loss_function = nn.BCELoss()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=LR)
    for _ in range(epochs):
        current_loss = 0.0
        for i, (inputs, targets) in enumerate(trainloader):
            inputs = inputs.to(device)
            targets = targets.float().reshape((targets.shape[0], 1)).to(device)
            optimizer.zero_grad()
            loss = loss_function(mlp(inputs), targets)
            loss.backward()
            optimizer.step()
            current_loss += loss.item()
            if i % 10 == 9:
                current_loss = 0.0  # the seed printed current_loss / 500 here
    return time.perf_counter() - start


@dataclass
class NotebookRun:
    """Notebook 05's own figures for one run."""

    data_seconds: float
    train_seconds: float
    compile_seconds: float | None

    @property
    def total(self) -> float:
        return self.data_seconds + self.train_seconds


def notebook_path(
    n_samples: int, epochs: int, device: torch.device, loss: str, cuda_graph: bool
) -> NotebookRun:
    """Notebook 05 at its defaults but `loss` and `cuda_graph`: its data, then its training."""
    torch.manual_seed(SEED)  # setup() seeds
    start = time.perf_counter()
    train_x, train_y, _, _ = train_test_images(
        "fakedata", n_samples, round(n_samples * TEST_FRACTION), IMAGE, SEED, device
    )
    data_seconds = time.perf_counter() - start
    torch.manual_seed(SEED)
    model = MLP(sigmoid=loss == "bce").to(device)
    record = fit(
        model,
        criterion_for(loss),
        train_x,
        train_y,
        epochs=epochs,
        lr=LR,
        batch_size=BATCH,
        cuda_graph=cuda_graph,
        warm_up=loss == "fused_bce_with_logits",
    )
    return NotebookRun(data_seconds, record.train_seconds, record.compile_seconds)


def torchvision_items(n: int) -> float:
    """Seconds for FakeData + ToTensor to give n images, one by one (what a DataLoader asks)."""
    dataset = FakeData(size=n, image_size=IMAGE, num_classes=2, transform=transforms.ToTensor())
    start = time.perf_counter()
    for i in range(n):
        dataset[i]
    return time.perf_counter() - start


def fake_images_seconds(n: int) -> float:
    """Seconds for fake_images to make the same n images."""
    start = time.perf_counter()
    fake_images(n, IMAGE, num_classes=2)
    return time.perf_counter() - start


def variants(device: torch.device, losses: list[str]) -> list[tuple[str, bool]]:
    """(loss, cuda_graph) pairs to time: the notebook's default first; graphs only on CUDA."""
    pairs = [("bce", False)]
    if device.type == "cuda":
        pairs += [(loss, True) for loss in losses]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=15_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--losses",
        nargs="+",
        default=["bce", "bce_with_logits", "fused_bce_with_logits"],
        help="losses timed with cuda_graph=True (CUDA only)",
    )
    args = parser.parse_args()
    for name in ("epochs", "n_samples", "repeats"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    try:  # refuse a device this machine lacks, or an unknown loss, before any work
        device = resolve_device(args.device)
        for loss in args.losses:
            criterion_for(loss)
    except ValueError as exc:
        parser.error(str(exc))
    warnings.filterwarnings("ignore", message=".*(worker processes|pin_memory).*")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {where}")
    load = os.getloadavg()[0]

    tv_runs, ours_runs, seed_runs = [], [], []
    runs: dict[tuple[str, bool], list[NotebookRun]] = {v: [] for v in variants(device, args.losses)}
    for _ in range(args.repeats):
        tv_runs.append(torchvision_items(args.n_samples))
        ours_runs.append(fake_images_seconds(args.n_samples))
        seed_runs.append(seed_code(args.n_samples, args.epochs, device))
        for (loss, graph), found in runs.items():
            found.append(notebook_path(args.n_samples, args.epochs, device, loss, graph))

    tv, ours, seed = min(tv_runs), min(ours_runs), min(seed_runs)
    print(f"fastest of {args.repeats} runs each, {args.n_samples} images, {args.epochs} epochs")
    print(f"load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"FakeData + ToTensor, item by item: {tv:6.3f} s")
    print(f"fake_images, {torch.get_num_threads()} threads:      {ours:6.3f} s")
    print(f"data ratio: {tv / ours:.1f}x (goal: at least 20x on the suite's 2-core CPU)")
    print(f"seed's code (DataLoader workers=4, model on {device.type}): {seed:6.2f} s")
    for (loss, graph), found in runs.items():
        best = min(found, key=lambda run: run.total)
        compile_note = (
            ""
            if best.compile_seconds is None
            else f"; before the clock: {best.compile_seconds:.2f} s warm-up/compile/recording"
        )
        print(
            f"notebook 05, loss={loss}, cuda_graph={graph}: {best.total:6.2f} s "
            f"({best.data_seconds:.2f} s data, {best.train_seconds:.2f} s training{compile_note})"
        )
        print(f"ratio: {seed / best.total:.1f}x the seed's code (goal: 12x on CPU, 20x on an H100)")
    fused, plain = runs.get(("fused_bce_with_logits", True)), runs.get(("bce_with_logits", True))
    if fused and plain:
        fused_train = min(run.train_seconds for run in fused)
        plain_train = min(run.train_seconds for run in plain)
        print(
            f"with the graph, fused_bce_with_logits trains in {fused_train / plain_train:.2f}x "
            f"the time of bce_with_logits (goal: at most 1.00x)"
        )


if __name__ == "__main__":
    main()

"""The MLP run of a popular guide to BCE loss in deep-learning models, as the guide wrote it,
against notebook 05 itself, executed.

Both train the guide's MLP (2352 -> 64 -> 32 -> 1, Adam lr 1e-4, batch 64, 3 epochs,
15,000 FakeData images of 3x28x28) from torch.manual_seed(42):

- the guide's code, in this process: FakeData + ToTensor through a DataLoader with 4
  workers and pin_memory, BCELoss, .item() per batch; on CUDA the model and each batch
  moved to the GPU, as a user of the guide would;
- notebook 05, executed through papermill with the same parameters. Its results JSON
  gives the times it measured on its own cells: `data_seconds` (the training and held-out
  images), `train_seconds` (the lesson's loop, in the notebook's cells) and
  `fast_train_seconds` (its optional section's fast path: fused Adam, and with
  cuda_graph=True a CUDA graph). The fast path warms up and records before its clock
  starts: that time, `compile_seconds`, is printed on its own.

Each figure is the fastest of --repeats runs, the contenders taking turns, so that a busy
spell of a shared machine does not decide the ratio; the load average is printed with
them. The data side (`fake_images` against torchvision's FakeData item by item, the
guide's 15,000 images) is timed the same way, in this process.

Goals: on the suite's 2-core CPU, fake_images at least 20x FakeData item by item, and
notebook 05's lesson loop (data + training) at least 12x the guide's code; on an H100 the
fast path (data + training) at least 20x the guide's code, its training alone at most
0.25 s with cuda_graph=True, and the fused loss with the graph no slower than
bce_with_logits with the graph. Usage:

    .venv/bin/python benchmarks/bench_mlp_training.py [--device cpu] [--repeats 3]
    .venv/bin/python benchmarks/bench_mlp_training.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FakeData

from bce_helpers.data import fake_images
from bce_helpers.models import MLP
from bce_helpers.params import resolve_device
from bce_helpers.train import criterion_for
from bce_suite.execute import execute
from bce_suite.notebooks import CHECKOUT
from bce_suite.notebooks import find_notebook as find_in

IMAGE = (3, 28, 28)
SEED, LR, BATCH = 42, 1e-4, 64  # notebook 05's defaults (the guide's)


def guide_code(n_samples: int, epochs: int, device: torch.device) -> float:
    """Seconds of the guide's own code, minus its prints, with the model on `device`."""
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
                current_loss = 0.0  # the guide printed current_loss / 500 here
    return time.perf_counter() - start


@dataclass
class NotebookRun:
    """The times executed notebook 05 recorded in its results JSON for one run."""

    data_seconds: float
    train_seconds: float  # the lesson's loop
    fast_train_seconds: float  # the optional section's fast path
    compile_seconds: float | None  # the fast path's warm-up, before its clock

    @property
    def total(self) -> float:
        """Data and the lesson's loop."""
        return self.data_seconds + self.train_seconds

    @property
    def fast_total(self) -> float:
        """Data and the fast path."""
        return self.data_seconds + self.fast_train_seconds


def notebook_run(
    n_samples: int, epochs: int, device: str, loss: str, cuda_graph: bool, keep: Path | None
) -> NotebookRun:
    """Execute notebook 05 (papermill) with these parameters; the times it recorded. With
    `keep`, the executed notebook and its results JSON stay in that new folder."""
    params = dict(n_samples=n_samples, epochs=epochs, device=device, loss=loss)
    params.update(cuda_graph=cuda_graph, log_every=1)  # log_every=1: any run size is allowed
    with tempfile.TemporaryDirectory(prefix="bench-05-") as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = folder / "results.json"
        notebook = find_in("05", CHECKOUT / "notebooks")
        execute(notebook, folder / notebook.name, {**params, "results_path": str(results)})
        r = json.loads(results.read_text())
    return NotebookRun(
        r["data_seconds"], r["train_seconds"], r["fast_train_seconds"], r.get("compile_seconds")
    )


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
    """(loss, cuda_graph) pairs to run: the notebook's default first; graphs only on CUDA."""
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
        help="losses run with cuda_graph=True (CUDA only)",
    )
    parser.add_argument(
        "--keep", type=Path, help="keep each executed notebook and its results JSON here"
    )
    args = parser.parse_args()
    for name in ("epochs", "n_samples", "repeats"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if args.n_samples < 64:
        parser.error(f"--n-samples must be at least 64 (notebook 05's), got {args.n_samples}")
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

    tv_runs, ours_runs, guide_runs = [], [], []
    runs: dict[tuple[str, bool], list[NotebookRun]] = {v: [] for v in variants(device, args.losses)}
    for repeat in range(args.repeats):
        tv_runs.append(torchvision_items(args.n_samples))
        ours_runs.append(fake_images_seconds(args.n_samples))
        guide_runs.append(guide_code(args.n_samples, args.epochs, device))
        for (loss, graph), found in runs.items():
            keep = args.keep / f"{loss}-graph={graph}-{repeat + 1}" if args.keep else None
            found.append(notebook_run(args.n_samples, args.epochs, str(device), loss, graph, keep))

    tv, ours, guide = min(tv_runs), min(ours_runs), min(guide_runs)
    print(f"fastest of {args.repeats} runs each, {args.n_samples} images, {args.epochs} epochs")
    print(f"load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"FakeData + ToTensor, item by item: {tv:6.3f} s")
    print(f"fake_images, {torch.get_num_threads()} threads:      {ours:6.3f} s")
    print(f"data ratio: {tv / ours:.1f}x (goal: at least 20x on the suite's 2-core CPU)")
    print(f"the guide's code (DataLoader workers=4, model on {device.type}): {guide:6.2f} s")
    for (loss, graph), found in runs.items():
        best = min(found, key=lambda run: run.total)
        print(
            f"notebook 05, loss={loss}, cuda_graph={graph}, the lesson's loop: {best.total:6.2f} s "
            f"({best.data_seconds:.2f} s data, {best.train_seconds:.2f} s training)"
        )
        print(f"ratio: {guide / best.total:.1f}x the guide's code (goal: 12x on the CPU)")
        fastest = min(found, key=lambda run: run.fast_total)
        compile_note = (
            ""
            if fastest.compile_seconds is None
            else f"; before the clock: {fastest.compile_seconds:.2f} s warm-up/compile/recording"
        )
        print(
            f"notebook 05, loss={loss}, cuda_graph={graph}, the fast path: "
            f"{fastest.fast_total:6.2f} s ({fastest.data_seconds:.2f} s data, "
            f"{fastest.fast_train_seconds:.2f} s training{compile_note})"
        )
        print(
            f"fast ratio: {guide / fastest.fast_total:.1f}x the guide's code (goal: 20x on an H100)"
        )
    fused, plain = runs.get(("fused_bce_with_logits", True)), runs.get(("bce_with_logits", True))
    if fused and plain:
        fused_train = min(run.fast_train_seconds for run in fused)
        plain_train = min(run.fast_train_seconds for run in plain)
        print(
            f"with the graph, fused_bce_with_logits trains in {fused_train / plain_train:.2f}x "
            f"the time of bce_with_logits (goal: at most 1.00x)"
        )


if __name__ == "__main__":
    main()

"""Training plumbing: fast in-memory batches in the order a DataLoader would give."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from bce_helpers.models import MLP


def dataloader_order(n: int) -> torch.Tensor:
    """The sample order DataLoader(shuffle=True, num_workers>0) draws for one epoch.

    Creating its iterator draws a base seed for the workers from the global generator,
    then the RandomSampler draws a seed and permutes with it. Drawing the same two numbers
    here keeps the global random state, and so the order, identical to the seed's loop.
    """
    torch.empty((), dtype=torch.int64).random_()  # the workers' base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def seed_order_batches(
    inputs: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches: one gather, then contiguous slices (no copies)."""
    order = dataloader_order(len(inputs)).to(inputs.device)
    inputs, targets = inputs[order], targets[order]
    for start in range(0, len(inputs), batch_size):
        yield inputs[start : start + batch_size], targets[start : start + batch_size]


def chance_loss(labels: torch.Tensor) -> float:
    """The BCE of the best constant prediction: the entropy of the label frequency (nats)."""
    p = labels.float().mean().item()
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def train_seed_mlp(
    epoch_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    epochs: int,
    lr: float = 1e-4,
    in_features: int = 28 * 28 * 3,
) -> list[float]:
    """Seed 002's loop without its prints: its MLP, BCELoss and Adam, from the current
    random state; epoch_batches() yields one epoch of (inputs, targets [N, 1]).
    Returns every batch's loss."""
    mlp = MLP(in_features=in_features)
    loss_function = nn.BCELoss()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        for inputs, targets in epoch_batches():
            optimizer.zero_grad()
            loss = loss_function(mlp(inputs), targets)
            loss.backward()
            optimizer.step()
            history.append(loss.detach())  # no .item() per batch: it would sync a GPU
    return torch.stack(history).tolist()


def newton_step_length(
    model: nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor
) -> float:
    """How far one Newton step on loss_fn(model(inputs)) would move the parameters.

    Near 0 once training has reached the optimum, whatever the scale of the loss: the
    gradient divided by the curvature (inf where the loss is flat in some direction). For
    the small models of notebook 04 (a few parameters), with the full Hessian."""
    from torch.func import functional_call

    named = dict(model.named_parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in named.values()])

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        chunks = vector.split([p.numel() for p in named.values()])
        params = {n: c.view_as(p) for (n, p), c in zip(named.items(), chunks, strict=True)}
        return loss_fn(functional_call(model, params, (inputs,)))

    gradient = torch.autograd.functional.jacobian(loss_of, flat).detach().cpu().double()
    hessian = torch.autograd.functional.hessian(loss_of, flat).detach().cpu().double()
    if torch.linalg.eigvalsh(hessian).min() <= 0:  # flat (a saturated sigmoid): no optimum here
        return math.inf
    return torch.linalg.solve(hessian, gradient).norm().item()


StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def warm_up_then_reset(
    step: StepFn,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 3,
    stream: torch.cuda.Stream | None = None,
) -> None:
    """Run `steps` training steps (on `stream`, if given), then put the model's weights back
    and the optimizer's state to that of a fresh Adam (all zeros), in place.

    Warm-up makes every lazily created buffer (optimizer state, gradients, library
    handles) exist before a CUDA graph is recorded; the reset keeps training identical to a
    run without it. Tensors stay where they are, so a graph recorded afterwards uses them."""
    weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
    if stream is not None:
        stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):  # does nothing for None
        for _ in range(steps):
            step(inputs, targets)
    if stream is not None:
        torch.cuda.current_stream(stream.device).wait_stream(stream)
    model.load_state_dict(weights)  # copies into the existing tensors
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.zero_()


class CudaGraphStep:
    """One training step recorded as a CUDA graph, replayed for every batch of its shape.

    `step(inputs, targets)` must do the whole step (zero_grad, forward, backward,
    optimizer.step) and return the loss, with no wait for the GPU inside (no .item());
    the optimizer must be an Adam or AdamW made with capturable=True. A replay launches all
    of the step's kernels at once, instead of one Python call each. Batches of another
    shape (a short last batch) run `step` as usual."""

    def __init__(
        self,
        step: StepFn,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
    ) -> None:
        if not all(group.get("capturable") for group in optimizer.param_groups):
            raise ValueError(
                f"CudaGraphStep needs optimizer made with capturable=True, got "
                f"{type(optimizer).__name__} with capturable="
                f"{optimizer.param_groups[0].get('capturable')!r}"
            )
        if inputs.device.type != "cuda":
            raise ValueError(
                f"CudaGraphStep needs inputs on a CUDA device, got device {inputs.device.type!r}"
            )
        self.step = step
        self.inputs, self.targets = inputs.clone(), targets.clone()  # the graph's own buffers
        stream = torch.cuda.Stream(inputs.device)
        warm_up_then_reset(step, model, optimizer, self.inputs, self.targets, stream=stream)
        optimizer.zero_grad(set_to_none=True)  # gradients then live in the graph's memory
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):  # records; computes nothing
            self.loss = step(self.inputs, self.targets)

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One training step on this batch; returns its loss."""
        if inputs.shape != self.inputs.shape or targets.shape != self.targets.shape:
            return self.step(inputs, targets)
        self.inputs.copy_(inputs)
        self.targets.copy_(targets)
        self.graph.replay()
        return self.loss.clone()  # the next replay overwrites self.loss

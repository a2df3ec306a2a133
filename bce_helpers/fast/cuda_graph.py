"""A training step recorded as a CUDA graph: code that runs on CUDA devices only.

Its tests need a GPU (`make gpu-check` runs them, and its mutation score); everything in
`fast.training` that runs on every device is tested on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from bce_helpers.fast.warm_up import warm_up_then_reset
from bce_helpers.train import StepFn


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a CUDA device's; the CPU's is already done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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

        stream = torch.cuda.Stream(inputs.device)  # warm-up and recording off the main stream
        stream.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(stream):
            warm_up_then_reset(step, model, optimizer, [(self.inputs, self.targets)])
        torch.cuda.current_stream(inputs.device).wait_stream(stream)
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

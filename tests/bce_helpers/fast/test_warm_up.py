"""bce_helpers.fast.warm_up: warm-up steps run as asked, then leave no trace: the weights and
the optimizer's state of a run without them, and the same training afterwards."""

import pytest
import torch
from torch import nn

from bce_helpers.fast.warm_up import warm_up_then_reset
from bce_helpers.models import MLP
from bce_helpers.train import training_step


def counted(step):
    """The step, and the batch sizes it is called with, in order."""
    seen = []

    def counting_step(inputs, targets):
        seen.append(len(inputs))
        return step(inputs, targets)

    return counting_step, seen


@pytest.mark.parametrize(("steps", "expected"), [(2, [6, 6, 2, 2]), (None, [6] * 3 + [2] * 3)])
def test_runs_steps_per_batch_then_restores_weights_and_a_fresh_adams_state(steps, expected):
    """steps=None: not passed, the documented default of 3 steps per batch."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    step, seen = counted(training_step(model, nn.BCEWithLogitsLoss(), optimizer))
    x, y = torch.randn(6, 3), torch.ones(6, 1)
    kwargs = {} if steps is None else {"steps": steps}
    tensors = [model.weight, model.bias]
    warm_up_then_reset(step, model, optimizer, [(x, y), (x[:2], y[:2])], **kwargs)
    assert seen == expected
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(a is b for a, b in zip(tensors, model.parameters(), strict=True)), "in place"
    state = [v for s in optimizer.state.values() for v in s.values()]
    assert len(state) == 2 * 3  # step, exp_avg, exp_avg_sq for weight and bias
    assert all(torch.count_nonzero(v) == 0 for v in state), "a fresh Adam's state: zeros"


def adam_run(warm_up: bool) -> tuple[list[float], list[torch.Tensor]]:
    """Six Adam steps of a seeded MLP, with or without warm-up steps undone first."""
    torch.manual_seed(0)
    model = MLP(in_features=12, sigmoid=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(40, 12), torch.randint(0, 2, (40, 1)).float()
    step = training_step(model, nn.BCEWithLogitsLoss(), optimizer)
    if warm_up:
        warm_up_then_reset(step, model, optimizer, [(x[:8] * 5, y[:8]), (x[:3], y[:3])], steps=3)
    losses = [step(x[i : i + 8], y[i : i + 8]).item() for i in (0, 8, 16, 24, 32, 0)]
    return losses, [p.detach().clone() for p in model.parameters()]


def test_training_after_warm_up_is_that_of_a_run_without_it():
    plain_losses, plain_weights = adam_run(warm_up=False)
    warm_losses, warm_weights = adam_run(warm_up=True)
    assert warm_losses == plain_losses
    assert all(torch.equal(a, b) for a, b in zip(warm_weights, plain_weights, strict=True))


def lbfgs_step(model: nn.Module, optimizer: torch.optim.LBFGS):
    """A training step for L-BFGS, which calls its loss through a closure."""

    def step(inputs, targets):
        def closure():
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(inputs), targets)
            loss.backward()
            return loss

        return optimizer.step(closure)

    return step


def test_state_that_is_not_a_tensor_is_left_as_it_is():
    """L-BFGS keeps counters (ints) and lists beside its tensors: only the tensors are zeroed."""
    x, y = torch.randn(5, 2), torch.ones(5, 1)
    states = []
    for reset in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(2, 1)
        optimizer = torch.optim.LBFGS(model.parameters(), max_iter=2)
        step = lbfgs_step(model, optimizer)
        before = [p.detach().clone() for p in model.parameters()]
        if reset:
            warm_up_then_reset(step, model, optimizer, [(x, y)], steps=2)
            assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
        else:
            step(x, y), step(x, y)  # the same steps, not undone
        (state,) = optimizer.state.values()
        states.append(state)
    counted, reset = states
    assert {k: v for k, v in reset.items() if isinstance(v, int)} == {
        k: v for k, v in counted.items() if isinstance(v, int)
    }
    assert reset["n_iter"] == counted["n_iter"] > 0
    tensors = [v for v in reset.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(torch.count_nonzero(v) == 0 for v in tensors)

"""bce_helpers.fast.cuda_graph: its refusals on any machine; the recorded step itself needs a GPU
(the tests marked CUDA run in `make gpu-check`)."""

import pytest
import torch
from torch import nn

from bce_helpers.data import train_test_images
from bce_helpers.fast.cuda_graph import CudaGraphStep, synchronize
from bce_helpers.fast.training import adam, train_fast
from bce_helpers.models import MLP
from bce_helpers.train import criterion_for, training_step

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# A device on every machine that is not the CPU (nor CUDA): the device check can be tested anywhere.
META = torch.device("meta")


def test_cuda_graph_step_refusals_name_what_they_got():
    model = nn.Linear(4, 1)
    x, y = torch.randn(8, 4), torch.ones(8, 1)
    for optimizer, name, capturable in (
        (torch.optim.SGD(model.parameters(), lr=0.1), "SGD", None),
        (torch.optim.Adam(model.parameters()), "Adam", False),
    ):
        with pytest.raises(ValueError) as refused:
            CudaGraphStep(lambda a, b: a.sum(), model, optimizer, x, y)
        assert str(refused.value) == (
            f"CudaGraphStep needs optimizer made with capturable=True, got {name} with "
            f"capturable={capturable}"
        )
    capturable = torch.optim.Adam(model.parameters(), capturable=True)
    for inputs in (x, x.to(META)):
        with pytest.raises(ValueError) as refused:
            CudaGraphStep(lambda a, b: a.sum(), model, capturable, inputs, y.to(inputs.device))
        assert str(refused.value) == (
            f"CudaGraphStep needs inputs on a CUDA device, got device '{inputs.device.type}'"
        )


def test_synchronize_waits_for_a_cuda_device_only(monkeypatch):
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    synchronize(torch.device("cpu"))
    synchronize(META)
    assert waited == []
    synchronize(torch.device("cuda", 1))
    assert waited == [torch.device("cuda", 1)]


def recorded_step(batch_size: int = 8):
    """A seeded MLP's capturable Adam step recorded on CUDA for batches of batch_size, the
    same step unrecorded on a twin model, and the data (40 samples) to feed both."""
    steps = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MLP(in_features=12, sigmoid=False).cuda()
        optimizer = adam(model, 1e-2, cuda_graph=True)
        steps.append((model, optimizer, training_step(model, nn.BCEWithLogitsLoss(), optimizer)))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 12, generator=generator).cuda()
    y = torch.randint(0, 2, (40, 1), generator=generator).float().cuda()
    (model, optimizer, step), (_, _, plain) = steps
    graph = CudaGraphStep(step, model, optimizer, x[:batch_size], y[:batch_size])
    return graph, plain, x, y


@CUDA
def test_replays_train_as_the_plain_steps_and_a_short_batch_runs_the_plain_step():
    graph, plain, x, y = recorded_step()
    got, want = [], []
    for start, stop in ((0, 8), (8, 16), (16, 21), (24, 32)):  # 16:21 is a short batch
        got.append(graph(x[start:stop], y[start:stop]))
        want.append(plain(x[start:stop], y[start:stop]))
    assert torch.equal(graph.inputs, x[24:32]), "the graph's buffer holds the last full batch"
    values = torch.stack(got).tolist()
    assert len(set(values)) == 4, "each loss is its own tensor, not the graph's buffer"
    assert values == pytest.approx(torch.stack(want).tolist(), rel=1e-5)


def graph_and_plain(loss: str) -> tuple[list[float], list[float], float | None]:
    """The guide's run (scaled down) on CUDA with and without the graph."""
    images, targets, _, _ = train_test_images("fakedata", 1000, 10, (3, 28, 28), device="cuda")
    records = []
    for graph in (True, False):
        torch.manual_seed(42)
        model = MLP(sigmoid=loss == "bce").cuda()
        warm_up = loss == "fused_bce_with_logits"
        records.append(
            train_fast(model, criterion_for(loss), images, targets, 2, 1e-4, 64, graph, warm_up)
        )
    return records[0].losses, records[1].losses, records[0].compile_seconds


@CUDA
@pytest.mark.parametrize("loss", ["bce", "bce_with_logits", "fused_bce_with_logits"])
def test_cuda_graph_trains_as_the_plain_run_up_to_rounding(loss):
    graph, plain, compile_seconds = graph_and_plain(loss)
    assert len(graph) == len(plain) == 2 * 16 and compile_seconds > 0
    spread = torch.tensor(plain).std().item()
    assert max(abs(a - b) for a, b in zip(graph, plain, strict=True)) < 0.1 * spread

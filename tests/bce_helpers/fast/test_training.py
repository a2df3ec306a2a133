"""bce_helpers.fast.training: train_fast against the guide's own loop, torch's Adam, and the
wall clock; its refusals before any work, its threads, warm-up and which Adam trained."""

import math
import time

import pytest
import torch
from torch import nn

from bce_helpers.data import train_test_images
from bce_helpers.fast.training import Training, adam, train_fast
from bce_helpers.models import MLP
from bce_helpers.train import criterion_for, shuffled_batches
from tests.bce_helpers.guide_loop import guide_losses

# --- adam -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cuda_graph", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_adam_is_torchs_adam_with_the_requested_options(cuda_graph, fused):
    model = nn.Linear(3, 1)
    optimizer = adam(model, 0.05, cuda_graph=cuda_graph, fused=fused)
    assert type(optimizer) is torch.optim.Adam
    assert optimizer.defaults["lr"] == 0.05
    assert optimizer.defaults["capturable"] is cuda_graph
    assert bool(optimizer.defaults["fused"]) is fused  # torch >= 2.4 has a fused CPU Adam
    params = optimizer.param_groups[0]["params"]
    assert len(params) == 2 and all(a is b for a, b in zip(params, model.parameters(), strict=True))


def test_adam_defaults_fused_and_not_capturable():
    optimizer = adam(nn.Linear(2, 1), 0.1)
    assert optimizer.defaults["fused"] and not optimizer.defaults["capturable"]


def test_adam_falls_back_to_the_plain_one_where_torch_has_no_fused_adam(monkeypatch):
    made = []

    class OldTorchAdam(torch.optim.Adam):  # torch before 2.4 on the CPU
        def __init__(self, params, fused=None, **kwargs):
            made.append((fused, kwargs["capturable"]))
            if fused:
                raise RuntimeError(
                    "`fused=True` requires all the params to be ... supported devices"
                )
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", OldTorchAdam)
    images, targets = torch.rand(8, 4), torch.ones(8, 1)
    torch.manual_seed(0)
    record = train_fast(MLP(in_features=4), nn.BCELoss(), images, targets, 1, 1e-3, 4)
    # no CUDA graph records this run: neither Adam is made capturable
    assert made == [(True, False), (None, False)] and not record.fused_adam
    monkeypatch.undo()
    torch.manual_seed(0)
    plain = train_fast(
        MLP(in_features=4), nn.BCELoss(), images, targets, 1, 1e-3, 4, fused_adam=False
    )
    assert record.losses == plain.losses


# --- train_fast -------------------------------------------------------------------------------


def test_train_fast_trains_as_the_guides_dataloader_loop_bit_for_bit():
    """Same seed, model, data, batches and optimizer: the same losses, batch by batch."""
    n, shape = 330, (3, 8, 8)  # 330 = 10 full batches of 32 and a short one of 10
    torch.manual_seed(42)
    expected = guide_losses(n, shape, 2, 1e-3, 32)
    images, targets, _, _ = train_test_images("fakedata", n, 10, shape)
    records = {}
    for fused in (False, True):
        torch.manual_seed(42)
        model = MLP(in_features=192)
        records[fused] = train_fast(
            model, criterion_for("bce"), images, targets, 2, 1e-3, 32, fused_adam=fused
        )
    plain, fused = records[False], records[True]
    assert type(plain) is Training and len(plain.losses) == 2 * 11
    assert plain.losses == expected and not plain.fused_adam and plain.compile_seconds is None
    # fused Adam (torch >= 2.4 on the CPU): the same update, rounded differently
    assert fused.fused_adam
    assert max(abs(a - b) for a, b in zip(fused.losses, expected, strict=True)) < 1e-5


def fit_args(n=10, features=3):
    g = torch.Generator().manual_seed(n)
    images = torch.randn(n, features, generator=g)
    targets = (torch.rand(n, 1, generator=g) < 0.5).float()
    return nn.Linear(features, 1), nn.BCEWithLogitsLoss(), images, targets


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=True), "epochs must be a positive int, got True"),
        (dict(epochs=1.0), "epochs must be a positive int, got 1.0"),
        (dict(epochs=-1), "epochs must be a positive int, got -1"),
        (dict(batch_size=0), "batch_size must be a positive int, got 0"),
        (dict(batch_size=2.0), "batch_size must be a positive int, got 2.0"),
        (dict(threads=True), "threads must be a positive int or None, got True"),
        (dict(threads=1.0), "threads must be a positive int or None, got 1.0"),
        (dict(threads=-1), "threads must be a positive int or None, got -1"),
    ],
)
def test_train_fast_refusals_name_argument_value_and_what_is_allowed(kwargs, message):
    model, loss, images, targets = fit_args()
    before = [p.detach().clone() for p in model.parameters()]
    args = {**dict(epochs=1, lr=0.1, batch_size=4), **kwargs}
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, images, targets, **args)
    assert str(refused.value) == message
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(("n_images", "n_targets"), [(0, 0), (5, 4)])
def test_train_fast_refuses_sample_counts_that_differ_or_are_zero(n_images, n_targets):
    model, loss, _, _ = fit_args()
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, torch.rand(n_images, 3), torch.ones(n_targets, 1), 1, 0.1, 4)
    assert str(refused.value) == (
        "images and targets must hold the same number (at least 1) of samples, got "
        f"{n_images} and {n_targets}"
    )


def test_train_fast_refuses_a_cuda_graph_off_cuda_naming_the_device():
    model, loss, images, targets = fit_args()
    with pytest.raises(ValueError) as refused:
        train_fast(model, loss, images, targets, 1, 0.1, 4, cuda_graph=True)
    assert str(refused.value) == "cuda_graph=True needs images on a CUDA device, got device 'cpu'"


@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (2, 2), (None, "outside"), ("-", 1)])
def test_train_fast_trains_on_the_requested_threads_and_restores_torchs_setting(threads, expected):
    """threads="-": not passed, the documented default of one thread on the CPU."""
    model, loss, images, targets = fit_args()
    before = torch.get_num_threads()
    outside = 3 if before != 3 else 4  # differs from every value tested
    kwargs = {} if threads == "-" else {"threads": threads}
    torch.set_num_threads(outside)
    try:
        during = []
        on_step = lambda: during.append(torch.get_num_threads())  # noqa: E731
        train_fast(model, loss, images, targets, 1, 0.1, 4, on_step=on_step, **kwargs)
        assert during == [outside if expected == "outside" else expected] * 3
        assert torch.get_num_threads() == outside
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("n", "batch_size", "shapes"), [(10, 4, {4, 2}), (8, 4, {4}), (3, 4, {3}), (9, 9, {9})]
)
def test_train_fast_warm_up_sees_every_batch_shape_of_training_and_is_undone(n, batch_size, shapes):
    records = {}
    for warm_up in (False, True):
        torch.manual_seed(7)  # the same initial weights and batch order for both runs
        model, loss, images, targets = fit_args(n)
        sizes = []

        def criterion(out, tgt, sizes=sizes, loss=loss):
            sizes.append(len(out))
            return loss(out, tgt)

        steps = 2 * math.ceil(n / batch_size)
        calls = []
        on_step = lambda calls=calls, sizes=sizes: calls.append(len(sizes))  # noqa: E731
        records[warm_up] = train_fast(
            model, criterion, images, targets, 2, 0.05, batch_size, warm_up=warm_up, on_step=on_step
        )
        # once after each training step, none for the warm-up's
        assert calls == list(range(len(sizes) - steps + 1, len(sizes) + 1))
        training = sizes[len(sizes) - steps :]
        assert set(training) == shapes and sum(training) == 2 * n
        assert set(sizes[: len(sizes) - steps]) == (shapes if warm_up else set())
    plain, warm = records[False], records[True]
    assert warm.losses == plain.losses and len(plain.losses) == 2 * math.ceil(n / batch_size)
    assert all(isinstance(v, float) for v in plain.losses)
    assert plain.compile_seconds is None and warm.compile_seconds > 0
    assert plain.train_seconds > 0 and warm.train_seconds > 0


@pytest.mark.parametrize("fused", [False, True])
def test_train_fast_reports_which_adam_trained(fused):
    model, loss, images, targets = fit_args()
    record = train_fast(model, loss, images, targets, 1, 0.1, 5, fused_adam=fused)
    assert record.fused_adam is fused and len(record.losses) == 2


def test_train_fast_losses_are_the_same_on_any_number_of_threads():
    images, targets, _, _ = train_test_images("fakedata", 200, 10, (3, 28, 28))
    runs = []
    for threads in (1, 2, None):
        torch.manual_seed(0)
        runs.append(train_fast(MLP(), nn.BCELoss(), images, targets, 1, 1e-3, 64, threads=threads))
    assert runs[0].losses == runs[1].losses == runs[2].losses and len(runs[0].losses) == 4


def test_train_fast_times_add_up_to_at_most_the_wall_clock():
    model, loss, images, targets = fit_args(40)
    start = time.perf_counter()
    record = train_fast(model, loss, images, targets, 2, 0.1, 8, warm_up=True)
    elapsed = time.perf_counter() - start
    assert record.compile_seconds > 0 and record.train_seconds > 0
    assert record.compile_seconds + record.train_seconds <= elapsed


def test_train_fast_trains_on_a_single_sample():
    model, loss, images, targets = fit_args(1)
    record = train_fast(model, loss, images, targets, 3, 0.1, 4)
    assert len(record.losses) == 3 and all(math.isfinite(v) for v in record.losses)


class LooksLikeCuda(torch.Tensor):
    """A CPU tensor that reports a CUDA device: what train_fast decides from the device can
    be checked on a machine without one (the recorded step itself: test_cuda_graph)."""

    @property
    def device(self):
        return torch.device("cuda")


def test_train_fast_records_the_first_full_batch_after_warm_up_when_asked(monkeypatch):
    """cuda_graph=True: a capturable Adam, warm-up on each batch shape, one step recorded on
    the first full batch, every batch then through it; the CPU's thread setting untouched."""
    import bce_helpers.fast.training as training

    calls = []

    def warm_up(step, model, optimizer, batches, steps=3):
        calls.append(("warm-up", optimizer, [(x, y) for x, y in batches]))

    class Recorded:
        def __init__(self, step, model, optimizer, inputs, targets):
            calls.append(("record", step, model, optimizer, inputs, targets))

        def __call__(self, inputs, targets):
            calls.append(("replay", len(inputs)))
            return torch.tensor(float(len(inputs)))

    def on_the_cpu(x, y, batch_size):  # the batches, gathered where the data really is
        return shuffled_batches(
            x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor), batch_size
        )

    synchronized = []
    monkeypatch.setattr(training, "shuffled_batches", on_the_cpu)
    monkeypatch.setattr(training, "warm_up_then_reset", warm_up)
    monkeypatch.setattr(training, "CudaGraphStep", Recorded)
    monkeypatch.setattr(training, "synchronize", synchronized.append)
    model, loss, images, targets = fit_args(10)
    images, targets = images.as_subclass(LooksLikeCuda), targets.as_subclass(LooksLikeCuda)
    threads = []
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # not train_fast's default of 1 on the CPU
    try:
        record = train_fast(
            model,
            loss,
            images,
            targets,
            2,
            0.1,
            4,
            cuda_graph=True,
            on_step=lambda: threads.append(torch.get_num_threads()),
        )
    finally:
        torch.set_num_threads(before)
    (_, optimizer, batches), (_, step, recorded_model, recorded_optimizer, x, y) = calls[:2]
    assert optimizer is recorded_optimizer and optimizer.defaults["capturable"] is True
    assert [(len(a), len(b)) for a, b in batches] == [(4, 4), (2, 2)]  # 10 = 4 + 4 + 2
    assert all(
        torch.equal(a, images[: len(a)]) and torch.equal(b, targets[: len(b)]) for a, b in batches
    )
    assert callable(step) and recorded_model is model
    assert torch.equal(x, images[:4]) and torch.equal(y, targets[:4])
    assert calls[2:] == [("replay", n) for n in (4, 4, 2) * 2]
    assert record.losses == [4.0, 4.0, 2.0] * 2 and record.compile_seconds > 0
    assert synchronized == [torch.device("cuda")]  # once recorded, before the clock starts
    assert threads == [3] * 6, "threads are the CPU's setting: none changed for CUDA"

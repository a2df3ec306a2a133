"""The fused loss's C kernel on the CPU: values and gradients against torch in float64 at
every size and thread count, NaN and infinities, the targets' check, which inputs take it,
and its build (cached, written atomically, and a compiler that fails is no error)."""

import ctypes
import math
import os

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.fast import fused_cpu
from bce_helpers.fast.fused import fused_bce_with_logits

# where a C compiler is found, the kernel must build: a failure is a failure, not a skip
pytestmark = pytest.mark.skipif(fused_cpu.compiler() is None, reason="no C compiler here")


def reference(x, y, reduction):
    """torch's loss and input gradient in float64 (the gradient of the loss as returned)."""
    xr = x.double().requires_grad_()
    loss = F.binary_cross_entropy_with_logits(xr, y.double(), reduction=reduction)
    (loss.sum() if reduction == "none" else loss).backward()
    return loss.detach(), xr.grad


@pytest.fixture
def threads():
    """Set torch's thread count for the test, and put it back after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 255, 257, 1000, 2**16 + 3, 2**18 + 7])
@pytest.mark.parametrize("count", [1, 3])
def test_kernel_matches_torch_at_every_size_and_thread_count(reduction, n, count, threads):
    threads(count)  # 3 threads on 2^18 + 7 elements: parts of 256-element blocks, one short
    g = torch.Generator().manual_seed(n)
    x, y = torch.randn(n, generator=g) * 6, torch.rand(n, generator=g)
    y[::3] = y[::3].round()  # hard targets too
    loss, grad, bad = fused_cpu.forward(x, y, reduction, True)
    ref_loss, ref_grad = reference(x, y, reduction)
    assert not bad and loss.dtype == grad.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref_loss, atol=1e-6, rtol=3e-7)
    atol = 1e-7 / (n if reduction == "mean" else 1)
    torch.testing.assert_close(grad.double(), ref_grad, atol=atol, rtol=1e-6)
    no_grad = fused_cpu.forward(x, y, reduction, False)
    assert no_grad[1] is None and torch.equal(no_grad[0], loss)


def test_a_sum_does_not_depend_on_the_thread_count_beyond_rounding(threads):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2**20 + 9, generator=g) * 4, torch.rand(2**20 + 9, generator=g)
    sums = []
    for count in (1, 2, 5):
        threads(count)
        sums.append(fused_cpu.forward(x, y, "sum", False)[0].item())
    exact = F.binary_cross_entropy_with_logits(x.double(), y.double(), reduction="sum").item()
    assert all(abs(s / exact - 1) < 1e-7 for s in sums)  # float32 rounds at 6e-8


def test_nan_and_infinities_as_the_formulas_have_them():
    x = torch.tensor(
        [float("nan"), math.inf, -math.inf, 1e30, -1e30, 1000.0, -1000.0, 88.0, 87.0, 16.6, 0.0]
        + [-0.0, 1e-30, -1e-30]
    )
    for target in (0.0, 0.5, 1.0):
        y = torch.full_like(x, target)
        loss, grad, _ = fused_cpu.forward(x, y, "none", True)
        ref_loss, ref_grad = reference(x, y, "none")
        # where torch's value is a number: the same (e^-|x| stops at e^-87, about 1.6e-38)
        finite = ref_loss.isfinite()
        torch.testing.assert_close(loss.double()[finite], ref_loss[finite], atol=1e-37, rtol=3e-7)
        torch.testing.assert_close(grad.double(), ref_grad, equal_nan=True, atol=1e-7, rtol=2e-7)
        # NaN in, NaN out; infinities as the formulas give them (x (c - y) at x = -inf,
        # y = 1 is inf, where torch's (1 - y) x makes NaN)
        assert loss[0].isnan() and grad[0].isnan()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BCE_HELPERS_COMPILE", "0")  # the same formulas, eagerly in torch
            eager = fused_bce_with_logits(x, y, reduction="none")
        torch.testing.assert_close(loss, eager, equal_nan=True, atol=1e-37, rtol=3e-7)


@pytest.mark.parametrize("bad_value", [1.5, -1e-7, float("nan")])
def test_a_bad_target_anywhere_is_reported(bad_value, threads):
    threads(2)
    n = 2**17 + 5
    x, y = torch.randn(n), torch.rand(n)
    per = math.ceil(math.ceil(n / 2) / fused_cpu.BLOCK) * fused_cpu.BLOCK  # as the C splits
    for where in (0, per - 1, per, -1):  # each end of each thread's part
        z = y.clone()
        z[where] = bad_value
        assert fused_cpu.forward(x, z, "mean", True)[2]
        with pytest.raises(ValueError, match="target must lie in"):
            fused_bce_with_logits(x, z)
    assert not fused_cpu.forward(x, y.clamp(0, 1), "mean", True)[2]


def test_strided_and_expanded_tensors_are_read_as_torch_reads_them():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(2, 2**17, generator=g) * 3
    x, y = base[:, ::2], torch.rand(1, generator=g).expand(2, 2**16)  # strides, a stride of 0
    negated = torch.complex(torch.zeros(2**16), x[0]).conj().imag  # a lazily negated view
    assert negated.is_neg()
    for xs, ys in ((x, y), (x[0], y[0]), (x.t(), y.t()), (negated, y[0])):
        xs = xs.clone().requires_grad_() if xs.is_contiguous() else xs.detach().requires_grad_()
        ours = fused_bce_with_logits(xs, ys, reduction="sum")
        ours.backward()
        ref_loss, ref_grad = reference(xs.detach(), ys, "sum")
        torch.testing.assert_close(ours.double(), ref_loss, atol=1e-6, rtol=3e-7)
        torch.testing.assert_close(xs.grad.double(), ref_grad, atol=1e-7, rtol=1e-6)


def test_a_cache_dir_that_cannot_be_written_is_no_error(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder would be
    assert fused_cpu.build(fused_cpu.compiler(), blocked / "cache") is None


def test_plain_float32_on_the_cpu_takes_the_kernel(monkeypatch):
    calls = []
    forward = fused_cpu.forward
    monkeypatch.setattr(fused_cpu, "forward", lambda *a: calls.append(a) or forward(*a))
    x, y = torch.randn(4, 5, requires_grad=True), torch.rand(4, 5)
    loss = fused_bce_with_logits(x, y)
    loss.backward()
    torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / 20)
    assert len(calls) == 1
    # weights, other dtypes, or the kernel turned off: the compiled formulas instead
    fused_bce_with_logits(x, y, weight=torch.rand(5))
    fused_bce_with_logits(x, y, pos_weight=torch.tensor(2.0))
    fused_bce_with_logits(x.double(), y.double())
    fused_bce_with_logits(x.bfloat16(), y.bfloat16())
    monkeypatch.setenv("BCE_HELPERS_CPU_KERNEL", "0")
    fused_bce_with_logits(x, y)
    assert len(calls) == 1
    assert not fused_cpu.usable(torch.zeros(1))
    monkeypatch.setenv("BCE_HELPERS_CPU_KERNEL", "1")
    assert not fused_cpu.usable(torch.zeros(1), torch.zeros(1, dtype=torch.float64))
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")  # no compiled path at all: eager formulas
    assert not fused_cpu.usable(torch.zeros(1))
    assert not fused_cpu.usable(torch.zeros(1, device="meta"))


def test_the_library_is_built_once_and_written_atomically(tmp_path, monkeypatch):
    cc = fused_cpu.compiler()
    first = fused_cpu.build(cc, tmp_path)
    assert first is not None and first.parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial file left
    stamp = first.stat().st_mtime_ns

    run = fused_cpu.subprocess.run

    def version_only(command, **kwargs):
        if "-o" in command:
            raise AssertionError("built again")
        return run(command, **kwargs)

    monkeypatch.setattr(fused_cpu.subprocess, "run", version_only)
    assert fused_cpu.build(cc, tmp_path) == first and first.stat().st_mtime_ns == stamp
    lib = ctypes.CDLL(str(first))
    assert hasattr(lib, "bce_fused")


def test_a_compiler_that_fails_leaves_nothing_and_the_loss_takes_another_path(
    tmp_path, monkeypatch
):
    assert fused_cpu.build("/nonexistent/cc", tmp_path) is None
    assert fused_cpu.build("false", tmp_path) is None  # runs, fails for every variant
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("BCE_HELPERS_CACHE_DIR", str(tmp_path))
    fused_cpu.library.cache_clear()
    try:
        assert fused_cpu.library() is None and not fused_cpu.usable(torch.zeros(1))
        x, y = torch.randn(50), torch.rand(50)
        torch.testing.assert_close(
            fused_bce_with_logits(x, y), F.binary_cross_entropy_with_logits(x, y)
        )
    finally:
        fused_cpu.library.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_a_library_that_cannot_be_loaded_is_no_error(monkeypatch):
    def cannot_map(path):
        raise OSError(f"{path}: failed to map segment from shared object")

    monkeypatch.setattr(fused_cpu.ctypes, "CDLL", cannot_map)
    fused_cpu.library.cache_clear()
    try:
        assert fused_cpu.library() is None and not fused_cpu.usable(torch.zeros(1))
    finally:
        fused_cpu.library.cache_clear()


def test_a_folder_others_can_write_to_is_not_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # as a folder made by someone else in /tmp could be
    assert not fused_cpu.private(shared)
    assert fused_cpu.build(fused_cpu.compiler(), shared) is None
    assert list(shared.iterdir()) == []
    made = tmp_path / "made"
    assert fused_cpu.private(made) and made.stat().st_mode & 0o777 == 0o700


def test_a_compiler_command_with_arguments_builds(tmp_path):
    assert fused_cpu.build(f"env {fused_cpu.compiler()}", tmp_path) is not None


def test_a_user_without_a_name_still_gets_a_cache_dir(monkeypatch):
    def no_name():
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.delenv("BCE_HELPERS_CACHE_DIR", raising=False)
    monkeypatch.setattr(fused_cpu.getpass, "getuser", no_name)
    assert fused_cpu.cache_dir().name == f"bce_helpers_{os.getuid()}"


def test_cache_dir_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("BCE_HELPERS_CACHE_DIR", str(tmp_path))
    assert fused_cpu.cache_dir() == tmp_path
    monkeypatch.delenv("BCE_HELPERS_CACHE_DIR")
    assert fused_cpu.cache_dir().name.startswith("bce_helpers_")


def test_the_path_is_named_as_it_is_taken(monkeypatch):
    from bce_helpers.fast.fused import pass_path

    cpu = torch.device("cpu")
    assert pass_path(torch.float32, cpu) == "a C kernel (built at first use)"
    assert pass_path(torch.bfloat16, cpu) == "torch.compile (inductor)"
    monkeypatch.setenv("BCE_HELPERS_CPU_KERNEL", "0")
    assert pass_path(torch.float32, cpu) == "torch.compile (inductor)"
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    assert pass_path(torch.float32, cpu) == "eager formulas (no compiler)"

"""fused_bce_with_logits against torch: values, input and target gradients, the one-pass
design, bad input, one compiled graph per variant and no recompilation, the eager fallback,
and the custom op: torch.library's own checks, torch.compile with fullgraph=True, no gradient
computed where none can be needed, empty inputs; on CUDA: no host sync, CUDA-graph capture,
launches."""

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch._dynamo.exc import BackendCompilerFailed

from bce_helpers.fast import compiler, fused
from bce_helpers.fast.fused import fused_bce_with_logits
from tests.bce_helpers.test_losses import TOL, bce_case

# the 16-bit types are compared with torch's float32 result on the same (rounded) inputs
LOW_PRECISION_TOL = {
    torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
}


def check_against_torch(logits, target, weight, pos_weight, reduction, tol=None):
    """Loss and input gradient of the fused loss against torch's (in float32 for 16-bit)."""
    low = logits.dtype in LOW_PRECISION_TOL
    tol = tol or (LOW_PRECISION_TOL[logits.dtype] if low else TOL[logits.dtype])
    x1 = logits.clone().requires_grad_()
    x2 = (logits.float() if low else logits).clone().requires_grad_()
    ours = fused_bce_with_logits(x1, target, weight, pos_weight, reduction)
    cast = (lambda t: None if t is None else t.float()) if low else (lambda t: t)
    ref = F.binary_cross_entropy_with_logits(
        x2, cast(target), cast(weight), pos_weight=cast(pos_weight), reduction=reduction
    )
    assert ours.dtype == logits.dtype and ours.shape == ref.shape
    torch.testing.assert_close(ours.to(ref.dtype), ref, **tol)
    # a non-uniform upstream gradient for 'none', to test the chain rule too
    upstream = torch.rand_like(ref) if reduction == "none" else torch.tensor(1.7, dtype=ref.dtype)
    ours.backward(upstream.to(ours.dtype))
    ref.backward(upstream)
    assert x1.grad.dtype == logits.dtype and x1.grad.shape == logits.shape
    torch.testing.assert_close(x1.grad.to(ref.dtype), x2.grad, **tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_matches_torch(reduction, weighted):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 5, generator=g) * 10
    y = torch.rand(32, 5, generator=g)
    w = torch.rand(5, generator=g) if weighted else None
    pw = 3 * torch.rand(5, generator=g) if weighted else None
    check_against_torch(x, y, w, pw, reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_long_sum_keeps_float32_accuracy_on_one_thread(reduction):
    # inductor's float32 sum adds 4096 vectors at a time in float32, further off than float32's
    # rounding over a million elements on one thread: the fused loss sums in float64 on the CPU
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2**20 + 5, generator=g) * 5, torch.rand(2**20 + 5, generator=g)
    ref = F.binary_cross_entropy_with_logits(x.double(), y.double(), reduction=reduction)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ours = fused_bce_with_logits(x, y, reduction=reduction)
    finally:
        torch.set_num_threads(threads)
    assert ours.dtype == torch.float32
    assert abs(ours.double().item() / ref.item() - 1) < 1e-7  # float32 rounds at 6e-8


def test_compiled_matches_torch_across_sizes_dtypes_and_broadcasts():
    for n in (1, 7, 1000, 2**16 + 3):
        x, y = torch.randn(n) * 5, torch.randint(0, 2, (n,)).float()
        check_against_torch(x, y, None, None, "mean")
    for dtype in (torch.bfloat16, torch.float16):
        x, y = (torch.randn(3000) * 5).to(dtype), torch.rand(3000).to(dtype)
        check_against_torch(x, y, None, torch.tensor([2.0], dtype=dtype), "mean")
    # a per-channel pos_weight [C, 1, 1] on [B, C, H, W] and an exotic [C, 1, W] weight
    x, y = torch.randn(2, 3, 4, 5) * 4, torch.rand(2, 3, 4, 5)
    check_against_torch(x, y, torch.rand(3, 1, 5), 3 * torch.rand(3, 1, 1), "sum")


def test_periodic_layout_of_weights():
    shape = torch.Size([2, 3, 4, 5])
    x = torch.arange(shape.numel()).reshape(shape)
    for w_shape in [(), (1,), (5,), (4, 5), (3, 1, 1), (3, 4, 1), (2, 3, 4, 5), (1, 3, 1, 1)]:
        w = torch.arange(1, 1 + torch.Size(w_shape).numel()).reshape(w_shape)
        spread = fused.spread(fused.periodic(w, shape), shape.numel())
        torch.testing.assert_close(spread.expand(shape.numel()), (w * (x * 0 + 1)).reshape(-1))
    assert fused.periodic(torch.ones(3, 1, 5), shape) is None  # exotic: not one block


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=bce_case())
def test_formulas_match_torch_everywhere(case):
    with eager_formulas():  # per example, so no other test runs uncompiled by accident
        assert not compiler.compile_enabled()
        check_against_torch(*case)
    assert compiler.compile_enabled()


@contextlib.contextmanager
def eager_formulas():
    """Run the fused formulas uncompiled (fast to test over many shapes and dtypes)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCE_HELPERS_COMPILE", "0")
        yield


def test_forward_keeps_one_tensor_and_backward_by_one_moves_nothing():
    x, y = torch.randn(100, 3, requires_grad=True), torch.rand(100, 3)
    loss = fused_bce_with_logits(x, y)
    node = loss.grad_fn
    assert node.saved_tensors == ()  # nothing saved for autograd but the gradient below
    expected = (torch.sigmoid(x) - y).detach() / x.numel()  # by hand: (sigmoid(x) - y) / N
    torch.testing.assert_close(node.grad, expected)
    pointer = node.grad.data_ptr()  # (no reference kept here: autograd may take the tensor)
    loss.backward()  # an upstream gradient of 1: the kept tensor is the gradient, untouched
    assert x.grad.data_ptr() == pointer
    torch.testing.assert_close(x.grad, expected)
    # without grad, no gradient is computed at all
    with torch.no_grad():
        assert fused_bce_with_logits(x, y).grad_fn is None


def test_backward_twice_says_why():
    x, y = torch.randn(10, requires_grad=True), torch.rand(10)
    loss = fused_bce_with_logits(x, y)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice through the same loss"):
        loss.backward()


def test_bad_input():
    x, y = torch.randn(4, 3), torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\].*first: 2.0"):
        fused_bce_with_logits(x, torch.full((4, 3), 2.0))
    with pytest.raises(ValueError, match="target must lie in"):
        fused_bce_with_logits(x, torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(4,\) does not broadcast"):
        fused_bce_with_logits(x, y, pos_weight=torch.ones(4))
    with pytest.raises(ValueError, match="pos_weight must be a torch.Tensor"):
        fused_bce_with_logits(x, y, pos_weight=2.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fused_bce_with_logits(x, y, reduction="avg")
    with pytest.raises(ValueError, match="weight requires grad, but fused_bce_with_logits"):
        fused_bce_with_logits(x, y, weight=torch.ones(3, requires_grad=True))
    with pytest.raises(ValueError, match="target is on meta but input is on cpu"):
        fused_bce_with_logits(x, y.to("meta"))


def test_falls_back_to_eager_with_a_warning_when_the_compiler_is_missing(monkeypatch):
    def broken_backend(fn, **options):
        def call(*args, **kwargs):
            raise BackendCompilerFailed(torch.compile, RuntimeError("no C++ compiler here"), None)

        return call

    monkeypatch.setattr(torch, "compile", broken_backend)
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "1")
    fused.compiled_pass.cache_clear()  # fresh variants, compiled (or not) under the patch
    try:
        x, y = torch.randn(10, requires_grad=True), torch.rand(10)
        with pytest.warns(RuntimeWarning, match="(?s)fused_bce_with_logits: .*running the same"):
            loss = fused_bce_with_logits(x, y)
        loss.backward()
        torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(x, y))
        torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / 10)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # that variant runs eagerly for good: no warning
            again = fused_bce_with_logits(x, y)
        torch.testing.assert_close(again, F.binary_cross_entropy_with_logits(x, y))
    finally:
        fused.compiled_pass.cache_clear()


def test_the_path_is_named_as_it_is_taken(monkeypatch):
    cpu = torch.device("cpu")
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert fused.pass_path(dtype, cpu) == "torch.compile (inductor)"
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    assert fused.pass_path(torch.float32, cpu) == "eager formulas (no compiler)"
    assert {"torch.compile (inductor)", "eager formulas (no compiler)"} < set(fused.PASS_PATHS)


@contextlib.contextmanager
def dynamo_messages() -> Iterator[list[str]]:
    """Every message dynamo logs in the block, its recompilations included, and every
    warning raised."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("torch._dynamo")
    torch._logging.set_logs(recompiles=True)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages += [str(w.message) for w in caught]
    finally:
        logger.removeHandler(handler)
        torch._logging.set_logs()


def test_the_message_capture_sees_a_recompilation():
    with dynamo_messages() as messages:
        static = torch.compile(lambda t: t * 2, dynamic=False, backend="eager")
        static(torch.ones(2))
        static(torch.ones(3))  # a size of its own: a recompilation
    assert any("Recompiling function" in m for m in messages), messages


# weightings of an input of rank >= 2 whose first and last sizes are at least 2: one
# variant of the compiled pass each (a per-class weight: a stride of 1 along the flat input,
# a per-sample pos_weight: a stride of the row's length; scalars)
WEIGHTINGS = {
    "none": lambda shape: (None, None),
    "per class, per sample": lambda shape: (
        torch.rand(shape[-1]),
        3 * torch.rand(shape[0], *[1] * (len(shape) - 1)),
    ),
    "scalars": lambda shape: (torch.tensor(0.7), torch.tensor([2.0])),
}
SHAPES = [(2, 3), (5, 4), (3, 2, 7), (2, 3, 4, 5), (4, 1, 3, 2, 2), (64, 33)]
# (dtype, reduction, weighting): 11 variants, each fed every shape
VARIANTS = [
    *(
        (torch.float32, r, w)
        for r in ("mean", "sum", "none")
        for w in ("none", "per class, per sample")
    ),
    (torch.float32, "mean", "scalars"),
    (torch.float64, "mean", "none"),
    (torch.float64, "sum", "per class, per sample"),
    (torch.bfloat16, "none", "per class, per sample"),
    (torch.float16, "mean", "none"),
]


def test_varied_inputs_compile_one_graph_per_variant_and_never_recompile():
    """Many sizes and ranks of each dtype, reduction and weighting: torch's values and
    gradients, one compiled graph per variant (its sizes dynamic, whatever the rank), and
    not one recompilation logged or warned about. A lone element is a variant of its own
    (dynamo specializes a size of 1): one graph more."""
    from torch._dynamo.utils import counters

    fused.compiled_pass.cache_clear()  # compile every variant afresh
    before = counters["stats"]["unique_graphs"]
    g = torch.Generator().manual_seed(4)
    with dynamo_messages() as messages:
        for dtype, reduction, weighting in VARIANTS:
            for shape in SHAPES:
                x = (torch.randn(shape, generator=g) * 4).to(dtype)
                y = torch.rand(shape, generator=g).to(dtype)
                w, pw = (None if t is None else t.to(dtype) for t in WEIGHTINGS[weighting](shape))
                check_against_torch(x, y, w, pw, reduction)
        for shape in [(1,), (1, 1), (1, 1, 1)]:
            check_against_torch(torch.randn(shape), torch.rand(shape), None, None, "mean")
    assert counters["stats"]["unique_graphs"] - before == len(VARIANTS) + 1
    assert not [m for m in messages if "recompil" in m.lower()], messages


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_compiled_pass_is_one_loop_over_memory(reduction):
    from torch._inductor.utils import run_and_get_code

    fresh = torch.compile(fused._flat_one_pass, dynamic=True, options=fused.COMPILE_OPTIONS)
    x, y = torch.randn(2**16 + 3), torch.rand(2**16 + 3)  # past inductor's threads threshold
    scale = torch.full((), 1 / x.numel()) if reduction == "mean" else None  # as _forward does
    with fused.compile_settings():
        (loss, grad, bad), codes = run_and_get_code(fresh, x, y, None, None, reduction, True, scale)
    # one C++ loop over the elements reads x and y and writes the gradient (and the losses
    # for 'none'); a second would read memory again (the 'sum' loss does, without
    # COMPILE_OPTIONS's limit on formulas computed inside their consumer)
    assert len(re.findall(r"for\s*\(int64_t x0\b", "".join(codes))) == 1
    # 1/N comes in as a tensor: without it the loop divides by the size for every vector
    assert "/ static_cast<double>(ks" not in "".join(codes)
    ref_x = x.clone().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y, reduction=reduction)
    ref.backward(torch.ones_like(ref))
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(grad, ref_x.grad)
    assert not bad


OP = torch.ops.bce_helpers.fused_bce_with_logits.default
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_the_op_passes_torch_library_opcheck(monkeypatch):
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch, checked by
    torch.library.opcheck on real calls with and without weights (the formulas run eagerly
    inside the op here: what is checked is the op's registration, not its compiled path)."""
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, generator=g), torch.rand(8, 3, generator=g)
    w, pw = torch.rand(3, generator=g), 2 * torch.rand(8, 1, generator=g)
    for args in [
        (x.requires_grad_(), y, w, pw, "mean", True),
        (x.detach(), y, w, None, "none", False),
    ]:
        torch.library.opcheck(OP, args)


def test_fake_implementation_gives_shapes_without_computing():
    x = torch.empty(5, 4, device="meta")
    loss, grad = OP(x, torch.empty(5, 4, device="meta"), None, None, "none", True)
    assert loss.shape == (5, 4) and grad.shape == (5, 4) and loss.device.type == "meta"
    loss, grad = OP(x, torch.empty(5, 4, device="meta"), None, None, "mean", False)
    assert loss.shape == () and grad.numel() == 0


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(6, 3)

    def forward(self, x, y, loss_fn, **kwargs):
        return loss_fn(self.layer(x) * 4, y, **kwargs)


def losses_and_grads(model, x, y, loss_fn, **kwargs):
    """The loss and the gradients of the model's parameters and of y (when it requires grad)."""
    model.zero_grad()
    y = y.detach().requires_grad_(y.requires_grad)
    loss = model(x, y, loss_fn, **kwargs)
    (loss.sum() if loss.dim() else loss).backward()
    return [loss.detach(), *(p.grad for p in model.parameters()), y.grad]


def test_compiled_model_keeps_the_loss_in_one_graph():
    """fullgraph=True: any graph break raises. The op is in the graph, and the loss and the
    gradients (of the parameters, and of a target that requires grad) are torch's. AOT
    autograd traces forward and backward through the fake implementation here; inductor,
    which calls the op as it is, runs in the CUDA test below."""
    from torch._dynamo.testing import CompileCounterWithBackend

    model = Model()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 6, generator=g), torch.rand(32, 3, generator=g)
    w, pw = torch.rand(3, generator=g), 3 * torch.rand(3, generator=g)
    cases = [dict(), dict(weight=w, pos_weight=pw, reduction="none")]
    for kwargs in cases:
        for target in (y, y.clone().requires_grad_()):
            ours = losses_and_grads(compiled, x, target, fused_bce_with_logits, **kwargs)
            ref = losses_and_grads(model, x, target, F.binary_cross_entropy_with_logits, **kwargs)
            for a, b in zip(ours, ref, strict=True):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert counter.frame_count >= 1
    ops = {node.target for gm in counter.graphs for node in gm.graph.nodes}
    assert torch.ops.bce_helpers.fused_bce_with_logits.default in ops


def test_a_compiled_model_with_dynamic_sizes_keeps_one_graph_for_every_batch_size():
    """The op's fake implementation follows symbolic sizes: a model compiled with
    dynamic=True and fullgraph=True serves every batch size from one graph, with torch's
    loss and gradients; the pass the op runs is the graph eager calls compiled (no
    recompilation of it either)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()  # Model.forward's graphs from other tests' compiles: gone
    model = Model()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=counter)
    g = torch.Generator().manual_seed(5)
    with dynamo_messages() as messages:
        losses_and_grads(model, torch.randn(7, 6), torch.rand(7, 3), fused_bce_with_logits)
        for batch in (8, 17, 64, 5):
            x, y = torch.randn(batch, 6, generator=g), torch.rand(batch, 3, generator=g)
            ours = losses_and_grads(compiled, x, y, fused_bce_with_logits)
            ref = losses_and_grads(model, x, y, F.binary_cross_entropy_with_logits)
            for a, b in zip(ours[:-1], ref[:-1], strict=True):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert counter.frame_count == 1
    assert not [m for m in messages if "recompil" in m.lower()], messages


def test_compiled_loss_still_refuses_a_bad_target_on_the_cpu():
    compiled = torch.compile(fused_bce_with_logits, fullgraph=True, backend="aot_eager")
    x = torch.randn(10, requires_grad=True)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\].*first: 1.5"):
        compiled(x, torch.full((10,), 1.5))


@pytest.fixture
def need_grad_seen(monkeypatch):
    """The need_grad each pass was asked for, in order."""
    seen = []
    forward = fused._forward

    def spy(*args):
        seen.append(args[-1])
        return forward(*args)

    monkeypatch.setattr(fused, "_forward", spy)
    return seen


def test_no_gradient_is_computed_where_none_can_be_needed(need_grad_seen):
    x, y = torch.randn(50, 2), torch.rand(50, 2)
    ref = F.binary_cross_entropy_with_logits(x, y)
    torch.testing.assert_close(fused_bce_with_logits(x, y), ref)  # input without grad
    x.requires_grad_()
    with torch.no_grad():
        torch.testing.assert_close(fused_bce_with_logits(x, y), ref)
    with torch.inference_mode():
        torch.testing.assert_close(fused_bce_with_logits(x, y), ref)
    loss = fused_bce_with_logits(x, y)
    assert need_grad_seen == [False, False, False, True]
    loss.backward()
    torch.testing.assert_close(x.grad, (torch.sigmoid(x) - y).detach() / x.numel())


def test_only_a_target_that_requires_grad_computes_no_input_gradient(need_grad_seen):
    x, y = torch.randn(40), torch.rand(40, requires_grad=True)
    fused_bce_with_logits(x, y).backward()
    assert need_grad_seen == [False]
    y_ref = y.detach().requires_grad_()
    F.binary_cross_entropy_with_logits(x, y_ref).backward()
    torch.testing.assert_close(y.grad, y_ref.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(0,), (0, 3)])
def test_an_empty_input_is_what_torch_gives(reduction, shape):
    x, y = torch.empty(shape, requires_grad=True), torch.empty(shape)
    ours = fused_bce_with_logits(x, y, reduction=reduction)
    x_ref = x.detach().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(x_ref, y, reduction=reduction)
    torch.testing.assert_close(ours, ref, equal_nan=True)  # 'mean': NaN, as torch's
    assert ours.isnan().any() == (reduction == "mean")
    (ours.sum() if reduction == "none" else ours).backward()
    (ref.sum() if reduction == "none" else ref).backward()
    assert x.grad.shape == x_ref.grad.shape == shape


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_targets_that_require_grad_get_torchs_gradient(reduction, weighted):
    """d loss / d y = w ((1 - p_w) logsigmoid(x) - x), scaled by the upstream gradient: against
    torch's autograd, with the input's gradient beside it."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(9, 4, generator=g) * 5, torch.rand(9, 4, generator=g)
    w = torch.rand(4, generator=g) if weighted else None
    pw = 3 * torch.rand(9, 1, generator=g) if weighted else None
    upstream = torch.rand(x.shape if reduction == "none" else (), generator=g) + 0.5
    grads = []
    for loss_fn in (fused_bce_with_logits, F.binary_cross_entropy_with_logits):
        xi, yi = x.clone().requires_grad_(), y.clone().requires_grad_()
        loss = loss_fn(xi, yi, w, pos_weight=pw, reduction=reduction)
        loss.backward(upstream)
        grads.append((loss.detach(), xi.grad, yi.grad))
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref)


def test_weights_that_require_grad_are_refused_by_name():
    x, y = torch.randn(4, 3), torch.rand(4, 3)
    with pytest.raises(ValueError, match="pos_weight requires grad, but fused_bce_with_logits"):
        fused_bce_with_logits(x, y, pos_weight=torch.ones(3, requires_grad=True))


# ------------------------------------------------------------------ on CUDA (the GPU check)
@CUDA
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_no_call_waits_for_the_device(dtype, reduction):
    """torch's sync debug mode raises on any device-to-host wait: forward and backward."""
    x = torch.randn(2**20 + 3, device="cuda", dtype=dtype, requires_grad=True)
    y = torch.rand(2**20 + 3, device="cuda", dtype=dtype)
    fused_bce_with_logits(x, y, reduction=reduction).sum().backward()  # compiles the kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            x.grad = None
            fused_bce_with_logits(x, y, reduction=reduction).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ref_x = x.detach().float().requires_grad_()
    F.binary_cross_entropy_with_logits(ref_x, y.float(), reduction=reduction).sum().backward()
    rtol = 2e-6 if dtype == torch.float32 else 8e-3
    error = (x.grad.float() - ref_x.grad).abs().max() / ref_x.grad.abs().max()
    assert error.item() <= rtol


@CUDA
def test_mean_forward_backward_launches_three_kernels():
    """The pass, the sum of its partial sums, and the scale that ends at once for 1; beside
    them only the autograd engine's fill of the upstream gradient."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(2**22, device="cuda", requires_grad=True)
    y = torch.rand(2**22, device="cuda")
    fused_bce_with_logits(x, y).backward()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        x.grad = None
        fused_bce_with_logits(x, y).backward()
        torch.cuda.synchronize()
    kernels = [e.name for e in prof.events() if e.device_type.name == "CUDA"]
    ours = sorted(k for k in kernels if k.startswith(("_bce_pass", "_finish", "_scale")))
    assert ours == ["_bce_pass_kernel", "_finish_kernel", "_scale_kernel"], kernels
    assert len(kernels) <= 4, kernels


@CUDA
def test_a_cuda_graph_records_and_replays_forward_and_backward():
    x = torch.randn(3, 2**16, device="cuda", requires_grad=True)
    y = torch.rand(3, 2**16, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up: kernels compiled, allocator settled
            x.grad = None
            fused_bce_with_logits(x, y).backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        loss = fused_bce_with_logits(x, y)
        loss.backward()
    with torch.no_grad():
        x.copy_(torch.randn_like(x))
        y.copy_(torch.rand_like(y))
    graph.replay()
    ref_x = x.detach().clone().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=2e-6, atol=0)
    torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-5, atol=1e-12)


@CUDA
def test_compiled_model_on_cuda_keeps_the_loss_in_one_graph():
    model = Model().cuda()
    compiled = torch.compile(model, fullgraph=True)
    x, y = torch.randn(4096, 6, device="cuda"), torch.rand(4096, 3, device="cuda")
    ours = losses_and_grads(compiled, x, y, fused_bce_with_logits)
    ref = losses_and_grads(model, x, y, F.binary_cross_entropy_with_logits)
    for a, b in zip(ours[:-1], ref[:-1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)

"""fused_bce_with_logits as a custom op: torch.library's own checks, torch.compile with
fullgraph=True, no gradient computed where none can be needed, empty inputs, targets that
require grad (all against torch), and on CUDA: no host sync, CUDA-graph capture, launches."""

import pytest
import torch
import torch.nn.functional as F

from bce_helpers.fast import fused
from bce_helpers.fast.fused import fused_bce_with_logits

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

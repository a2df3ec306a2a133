"""BCE at scale: eager torch, torch.compile of torch's loss, the eager from-scratch loss and
fused_bce_with_logits, in effective GB/s against the measured copy bandwidth.

Effective bandwidth counts the least bytes a forward and a separate backward move (20 per
float32 element forward+backward, 8 forward) over the time of a call, for every method; the
fused loss's own design moves 12 (it computes the gradient in the forward pass), so it can
read above 1.0x the copy. Each method is timed in its own block after warm-up calls (CUDA
events on CUDA), in rounds of --repeats calls for at least --min-seconds (a fast method's
best is then taken over many calls), and the best and the median call are printed.

At the largest size each run also times x * y, which reads and writes what the fused pass
does (x and y, one result) with no arithmetic: "fused / (x * y)" near 1.0x says the fused
pass runs at the floor of its own memory traffic. Where the fused pass is the C kernel (the
CPU, float32), it also times the same loss through the inductor-compiled formulas (the
kernel turned off) and prints "fused C kernel / fused through inductor".

Goals, reduction 'mean', forward+backward: on this suite's 2-core CPU at 2^24 float32, at
least 1.0x the copy bandwidth and 14x eager torch; on an H100 at 2^28, at least 1.0x copy,
4x eager torch and 1.1x the compiled torch loss, forward alone 90% of copy, and 1.5x eager
torch at every size from 2^18. Usage:

    .venv/bin/python benchmarks/bench_bce.py [--log2-sizes 24] [--device cpu] [--repeats 30]
    .venv/bin/python benchmarks/bench_bce.py --device cuda --log2-sizes 18 20 22 24 26 28 --runs 3
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

from bce_helpers import fused_cpu
from bce_helpers.bench import (
    ELEMENT_READS_WRITES,
    METHODS,
    bce_timings,
    bytes_per_element,
    copy_timing,
    effective_gbps,
    gbps,
    keep_freed_memory,
    random_inputs,
    time_call,
    warm_memory,
)
from bce_helpers.compiler import compile_enabled
from bce_helpers.fused import pass_path


def check_methods(dtype: torch.dtype, device: torch.device) -> None:
    """Refuse to time a method whose loss or gradient differs from torch's."""
    x, y = random_inputs(4099, dtype, device, seed=1)
    ref_x = x.float().clone().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y.float())
    ref.backward()
    tol = {torch.float32: 1e-5}.get(dtype, 2e-2)
    for name, fn in METHODS.items():
        xm = x.clone().requires_grad_()
        loss = fn(xm, y)
        loss.backward()
        if abs(loss.item() - ref.item()) > tol or (xm.grad.float() - ref_x.grad).abs().max() > tol:
            raise SystemExit(f"error: {name} does not match torch's loss; not timing it")
    print(f"every method matches torch's loss and gradient (within {tol:g}) before timing")


def same_traffic_seconds(
    n: int, dtype: torch.dtype, device: torch.device, repeats: int, min_seconds: float
) -> float:
    """Best seconds of x * y: the fused pass's memory traffic (x and y read once, one tensor
    of their size written, freshly allocated as the gradient is) with no arithmetic to speak
    of. The floor for a one-pass loss; a copy moves fewer bytes (and on the CPU glibc's
    memcpy writes past the caches, where a computed result is written through them)."""
    x, y = random_inputs(n, dtype, device)
    return time_call(lambda: torch.mul(x, y), repeats, device, min_seconds=min_seconds).best


def inductor_fused_seconds(
    n: int, dtype: torch.dtype, device: torch.device, repeats: int, min_seconds: float
) -> float:
    """Best seconds of the fused loss forward+backward with the C kernel turned off: the same
    formulas compiled by inductor."""
    before = os.environ.get("BCE_HELPERS_CPU_KERNEL")
    os.environ["BCE_HELPERS_CPU_KERNEL"] = "0"
    try:
        fused = {"fused": METHODS["fused"]}
        timings = bce_timings(
            n, dtype, device, "forward+backward", repeats, methods=fused, min_seconds=min_seconds
        )
    finally:
        if before is None:
            del os.environ["BCE_HELPERS_CPU_KERNEL"]
        else:
            os.environ["BCE_HELPERS_CPU_KERNEL"] = before
    return timings["fused"].best


def measure(
    log2: int,
    dtype: torch.dtype,
    device: torch.device,
    repeats: int,
    copy_gbps: float,
    min_seconds: float,
) -> dict[tuple[str, str], float]:
    """Print one size's table; return the best effective GB/s per (mode, method)."""
    n, element_size = 2**log2, torch.empty((), dtype=dtype).element_size()
    best: dict[tuple[str, str], float] = {}
    for mode in ELEMENT_READS_WRITES:
        timings = bce_timings(n, dtype, device, mode, repeats, min_seconds=min_seconds)
        for method, t in timings.items():
            fast, typical = (effective_gbps(n, dtype, mode, s) for s in (t.best, t.median))
            best[mode, method] = fast
            moved = bytes_per_element(method, mode, element_size)
            print(
                f"{mode:<17} {method:<19} {fast:9.2f} GB/s best  {typical:9.2f} median  "
                f"({fast / copy_gbps:6.1%} of copy)  {t.best * 1e6:10.1f} us  "
                f"{moved:2d} bytes/element by design"
            )
        fused = best[mode, "fused"]
        for peer in ("eager torch", "compiled torch"):
            print(f"{mode:<17} fused / {peer}: {fused / best[mode, peer]:.2f}x")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-sizes", type=int, nargs="+", default=[24])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per method")
    parser.add_argument("--runs", type=int, default=1, help="measure the largest size N times")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="time each method for at least this long (in rounds of --repeats calls)",
    )
    parser.add_argument("--system-malloc", action="store_true", help="leave the allocator as it is")
    args = parser.parse_args()
    for name, value, low, high in (("--log2-sizes", min(args.log2_sizes), 1, 31),
                                   ("--log2-sizes", max(args.log2_sizes), 1, 31),
                                   ("--repeats", args.repeats, 1, 10**5),
                                   ("--runs", args.runs, 1, 100),
                                   ("--min-seconds", args.min_seconds, 0, 60)):  # fmt: skip
        if not low <= value <= high:
            parser.error(f"{name} {value} is not allowed: expected {low} to {high}")
    allocator = "the system's malloc, unchanged" if args.system_malloc else keep_freed_memory()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    largest = max(args.log2_sizes)
    print(f"torch {torch.__version__}, {device}, {args.dtype}, reduction 'mean'")
    probe = torch.empty(0, dtype=dtype, device=device)
    c_kernel = fused_cpu.usable(probe)
    print(f"fused path: {pass_path(dtype, device)}; torch.compile in use: {compile_enabled()}")
    print(f"CPU allocations: {allocator}")
    print(f"each method: at least {args.repeats} timed calls and {args.min_seconds:g} s of them")
    warm_memory(device)  # first touches of a VM's memory are slow: not what we measure
    check_methods(dtype, device)

    def copy_roofline() -> float:
        """The copy bandwidth at the largest size, measured now (it drifts on a shared host)."""
        copy = copy_timing(2**largest, dtype, device, args.repeats, args.min_seconds)
        best, median = (gbps(2 * 2**largest * element_size, s) for s in (copy.best, copy.median))
        print(f"copy bandwidth (the roofline) at 2^{largest}: {best:8.2f} GB/s best "
              f"{median:8.2f} median")  # fmt: skip
        return best

    element_size = torch.empty((), dtype=dtype).element_size()
    copy_gbps = copy_roofline()
    fused_runs = []
    for log2 in sorted(set(args.log2_sizes)):
        for run in range(args.runs if log2 == largest else 1):
            print(f"\nn = 2^{log2}" + (f", run {run + 1} of {args.runs}" if args.runs > 1 else ""))
            if log2 == largest and run > 0:  # each run beside a copy of its own
                copy_gbps = copy_roofline()
            best = measure(log2, dtype, device, args.repeats, copy_gbps, args.min_seconds)
            if log2 == largest:
                fused_runs.append(best["forward+backward", "fused"])
                fused_share = best["forward+backward", "fused"] / copy_gbps
                print(f"forward+backward  fused / copy: {fused_share:.2f}x")
                floor = same_traffic_seconds(2**log2, dtype, device, args.repeats, args.min_seconds)
                floor_gbps = effective_gbps(2**log2, dtype, "forward+backward", floor)
                print(f"x * y, the same traffic as the fused pass without its arithmetic: "
                      f"{floor * 1e6:.1f} us")  # fmt: skip
                print(
                    "forward+backward  fused / (x * y): "
                    f"{best['forward+backward', 'fused'] / floor_gbps:.2f}x"
                )
                if c_kernel:
                    compiled = inductor_fused_seconds(
                        2**log2, dtype, device, args.repeats, args.min_seconds
                    )
                    compiled_gbps = effective_gbps(2**log2, dtype, "forward+backward", compiled)
                    print(f"fused through inductor (the C kernel turned off): "
                          f"{compiled * 1e6:.1f} us")  # fmt: skip
                    print(
                        "forward+backward  fused C kernel / fused through inductor: "
                        f"{best['forward+backward', 'fused'] / compiled_gbps:.2f}x"
                    )
    if len(fused_runs) > 1:
        spread = max(fused_runs) / min(fused_runs) - 1
        print(f"\nfused forward+backward at 2^{largest} over {len(fused_runs)} runs: "
              + ", ".join(f"{v:.1f}" for v in fused_runs)
              + f" GB/s; largest / smallest - 1 = {spread:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()

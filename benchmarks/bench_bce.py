"""BCE at scale: eager torch, torch.compile of torch's loss, the eager from-scratch loss and
fused_bce_with_logits, in effective GB/s against the measured copy bandwidth.

Effective bandwidth counts the least bytes a forward and a separate backward move (20 per
float32 element forward+backward, 8 forward) over the time of a call, for every method; the
fused loss's own design moves 12 (it computes the gradient in the forward pass), so it can
read above 1.0x the copy. The methods take turns in --rounds rounds after warm-up calls
(CUDA events on CUDA), each round --repeats calls of each for at least --min-seconds over
all rounds; the best call and the median over rounds of each round's median are printed.
Before timing a size, every method's loss and gradient at that size are checked against
float64 torch with relative tolerances (on CUDA both launch variants of the Triton kernel
too), and on CUDA the fused loss is also timed with each variant forced.

At the largest size each run also times x * y, which reads and writes what the fused pass
does (x and y, one result) with no arithmetic: "fused / (x * y)" near 1.0x says the fused
pass runs at the floor of its own memory traffic.

The fused pass is the Triton kernels on CUDA and torch.compile of the formulas (inductor)
on the CPU; "compiled torch" is what a user would pick instead: torch.compile of torch's own
loss. Goals (GOALS below), reduction 'mean', forward+backward, per device: --goals compares
each median with its goal, prints every comparison and exits 1 on a miss. Usage:

    .venv/bin/python benchmarks/bench_bce.py --device cpu --log2-sizes 24 --goals
    .venv/bin/python benchmarks/bench_bce.py --device cuda --log2-sizes $(seq 18 28) --goals
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import NamedTuple

import torch
import torch.nn.functional as F

from bce_helpers.fast import fused_triton
from bce_helpers.fast.bench import (
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
from bce_helpers.fast.compiler import compile_enabled
from bce_helpers.fast.fused import fused_bce_with_logits, pass_path

# relative to the largest reference value (a zero gradient where torch's is not fails):
# float32 sums in float32; 16-bit results rounded once, compared on the same rounded inputs
RTOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}


class Goal(NamedTuple):
    """fused forward+backward / peer at least `least` (median figures) at each of log2_sizes,
    on a device of this type."""

    device: str
    dtype: str
    log2_sizes: tuple[int, ...]
    peer: str
    least: float
    stretch: float | None = None


# effective GB/s at 20 bytes an element, measured side by side in one run: on the suite's
# 2-core CPU, and on an H100
GOALS = (
    Goal("cpu", "float32", (24,), "copy", 1.0),
    Goal("cpu", "float32", (24,), "eager torch", 12.0),
    Goal("cuda", "float32", (28,), "copy", 1.0, stretch=1.4),
    Goal("cuda", "float32", (28,), "eager torch", 4.0),
    Goal("cuda", "float32", (28,), "compiled torch", 1.1),
    Goal("cuda", "float32", tuple(range(18, 29)), "eager torch", 1.5),
    Goal("cuda", "float32", (20, 21, 22), "compiled torch", 3.0),
    Goal("cuda", "bfloat16", (28,), "copy", 1.0),
)


def forced(variant: fused_triton.Variant):
    """The fused loss with its Triton kernel's launch variant forced."""

    def loss(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        with fused_triton.forced_variant(variant):
            return fused_bce_with_logits(x, y, reduction=reduction)

    return loss


def methods_for(dtype: torch.dtype, device: torch.device) -> dict:
    """The methods timed: METHODS, and with the Triton kernel each launch variant forced."""
    if not fused_triton.usable(torch.empty(0, dtype=dtype, device=device)):
        return dict(METHODS)
    variants = {f"fused, {name} blocks": forced(v) for name, v in fused_triton.VARIANTS.items()}
    return {**METHODS, **variants}


def relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| over max |ref|."""
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-300)).item()


def check_methods(n: int, dtype: torch.dtype, device: torch.device, methods: dict) -> None:
    """Refuse to time a method whose loss or gradient at n elements differs from float64
    torch's on the same values by more than RTOL of the largest reference value."""
    x, y = random_inputs(n, dtype, device, seed=1)
    ref_x = x.double().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(ref_x, y.double())
    ref.backward()
    rtol = RTOL[dtype]
    for name, fn in methods.items():
        xm = x.clone().requires_grad_()
        loss = fn(xm, y)
        loss.backward()
        errors = relative_error(loss.detach(), ref.detach()), relative_error(xm.grad, ref_x.grad)
        if max(errors) > rtol:
            raise SystemExit(
                f"error: {name} at n = {n} is off torch's float64 loss by {errors[0]:.2g} and "
                f"its gradient by {errors[1]:.2g} (relative; allowed {rtol:g}): not timing it"
            )
    print(f"every method matches float64 torch's loss and gradient (relative {rtol:g})")


def check_goals(
    device: str, dtype: str, figures: dict[tuple[int, str], list[float]], copy: list[float]
) -> list[str]:
    """Print each goal for this device type and dtype against the median figures measured;
    return the misses."""
    misses = []
    print(f"\ngoals ({device}, {dtype}, forward+backward, median figures):")
    goals = [g for g in GOALS if (g.device, g.dtype) == (device, dtype)]
    if not goals:
        print("  none set for this device and dtype")
    for goal in goals:
        for log2 in goal.log2_sizes:
            fused = figures.get((log2, "fused"))
            peer = copy if goal.peer == "copy" else figures.get((log2, goal.peer))
            if (
                not fused
                or not peer
                or (goal.peer == "copy" and log2 != max(k for k, _ in figures))
            ):
                print(f"  2^{log2} fused / {goal.peer}: NOT MEASURED (goal {goal.least}x)")
                misses.append(f"2^{log2} fused / {goal.peer} not measured")
                continue
            ratio = statistics.median(fused) / statistics.median(peer)
            verdict = "met" if ratio >= goal.least else "MISSED"
            stretch = f", stretch {goal.stretch}x" if goal.stretch else ""
            print(f"  2^{log2} fused / {goal.peer}: {ratio:.2f}x, goal {goal.least}x{stretch}: "
                  f"{verdict}")  # fmt: skip
            if ratio < goal.least:
                misses.append(f"2^{log2} fused / {goal.peer} {ratio:.2f}x < {goal.least}x")
    return misses


def same_traffic_seconds(
    n: int, dtype: torch.dtype, device: torch.device, repeats: int, min_seconds: float
) -> float:
    """Best seconds of x * y: the fused pass's memory traffic (x and y read once, one tensor
    of their size written, freshly allocated as the gradient is) with no arithmetic to speak
    of. The floor for a one-pass loss; a copy moves fewer bytes (and on the CPU glibc's
    memcpy writes past the caches, where a computed result is written through them)."""
    x, y = random_inputs(n, dtype, device)
    return time_call(lambda: torch.mul(x, y), repeats, device, min_seconds=min_seconds).best


def measure(
    log2: int,
    dtype: torch.dtype,
    device: torch.device,
    args: argparse.Namespace,
    copy_gbps: float,
    methods: dict,
) -> dict[tuple[str, str], float]:
    """Print one size's table; return the median effective GB/s per (mode, method)."""
    n, element_size = 2**log2, torch.empty((), dtype=dtype).element_size()
    median: dict[tuple[str, str], float] = {}
    for mode in ELEMENT_READS_WRITES:
        timings = bce_timings(
            n, dtype, device, mode, args.repeats, methods=methods,
            min_seconds=args.min_seconds, rounds=args.rounds,
        )  # fmt: skip
        for method, t in timings.items():
            fast, typical = (effective_gbps(n, dtype, mode, s) for s in (t.best, t.median))
            median[mode, method] = typical
            moved = bytes_per_element(method, mode, element_size)
            print(
                f"{mode:<17} {method:<19} {fast:9.2f} GB/s best  {typical:9.2f} median  "
                f"({typical / copy_gbps:6.1%} of copy)  {t.best * 1e6:10.1f} us  "
                f"{moved:2d} bytes/element by design"
            )
        fused = median[mode, "fused"]
        for peer in ("eager torch", "compiled torch"):
            print(f"{mode:<17} fused / {peer}: {fused / median[mode, peer]:.2f}x")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-sizes", type=int, nargs="+", default=[24])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per method a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the methods take turns in")
    parser.add_argument("--runs", type=int, default=1, help="measure the largest size N times")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="time each method for at least this long (over all rounds)",
    )
    parser.add_argument(
        "--goals", action="store_true", help="compare with the device's goals; exit 1 on a miss"
    )
    parser.add_argument("--system-malloc", action="store_true", help="leave the allocator as it is")
    args = parser.parse_args()
    for name, value, low, high in (("--log2-sizes", min(args.log2_sizes), 1, 31),
                                   ("--log2-sizes", max(args.log2_sizes), 1, 31),
                                   ("--repeats", args.repeats, 1, 10**5),
                                   ("--rounds", args.rounds, 1, 1000),
                                   ("--runs", args.runs, 1, 100),
                                   ("--min-seconds", args.min_seconds, 0, 60)):  # fmt: skip
        if not low <= value <= high:
            parser.error(f"{name} {value} is not allowed: expected {low} to {high}")
    allocator = "the system's malloc, unchanged" if args.system_malloc else keep_freed_memory()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    largest = max(args.log2_sizes)
    print(f"torch {torch.__version__}, {device}, {args.dtype}, reduction 'mean'")
    methods = methods_for(dtype, device)
    print(f"fused path: {pass_path(dtype, device)}; torch.compile in use: {compile_enabled()}")
    print(f"CPU allocations: {allocator}")
    print(f"each method: {args.rounds} interleaved rounds of at least {args.repeats} timed "
          f"calls, {args.min_seconds:g} s in all")  # fmt: skip
    warm_memory(device)  # first touches of a VM's memory are slow: not what we measure

    def copy_roofline() -> float:
        """The copy bandwidth at the largest size, measured now (it drifts on a shared host):
        the median over rounds."""
        copy = copy_timing(2**largest, dtype, device, args.repeats * args.rounds, args.min_seconds)
        best, median = (gbps(2 * 2**largest * element_size, s) for s in (copy.best, copy.median))
        print(f"copy bandwidth (the roofline) at 2^{largest}: {best:8.2f} GB/s best "
              f"{median:8.2f} median")  # fmt: skip
        return median

    element_size = torch.empty((), dtype=dtype).element_size()
    copies = [copy_roofline()]
    figures: dict[tuple[int, str], list[float]] = {}
    for log2 in sorted(set(args.log2_sizes)):
        for run in range(args.runs if log2 == largest else 1):
            print(f"\nn = 2^{log2}" + (f", run {run + 1} of {args.runs}" if args.runs > 1 else ""))
            if log2 == largest and run > 0:  # each run beside a copy of its own
                copies.append(copy_roofline())
            if run == 0:
                check_methods(2**log2, dtype, device, methods)
            median = measure(log2, dtype, device, args, copies[-1], methods)
            for (mode, method), value in median.items():
                if mode == "forward+backward":
                    figures.setdefault((log2, method), []).append(value)
            if log2 == largest:
                fused_share = median["forward+backward", "fused"] / copies[-1]
                print(f"forward+backward  fused / copy: {fused_share:.2f}x")
                floor = same_traffic_seconds(2**log2, dtype, device, args.repeats, args.min_seconds)
                floor_gbps = effective_gbps(2**log2, dtype, "forward+backward", floor)
                print(f"x * y, the same traffic as the fused pass without its arithmetic: "
                      f"{floor * 1e6:.1f} us")  # fmt: skip
                print(
                    "forward+backward  fused / (x * y): "
                    f"{median['forward+backward', 'fused'] / floor_gbps:.2f}x"
                )
    fused_runs = figures[largest, "fused"]
    if len(fused_runs) > 1:
        spread = max(fused_runs) / min(fused_runs) - 1
        print(f"\nfused forward+backward at 2^{largest} over {len(fused_runs)} runs: "
              + ", ".join(f"{v:.1f}" for v in fused_runs)
              + f" GB/s; largest / smallest - 1 = {spread:.1%}")  # fmt: skip
    if args.goals:
        misses = check_goals(device.type, args.dtype, figures, copies)
        if misses:
            print("goals missed: " + "; ".join(misses))
            sys.exit(1)
        print(f"every {device.type} {args.dtype} goal set is met")


if __name__ == "__main__":
    main()

"""BCE at scale: eager torch against the fused from-scratch loss, in effective GB/s.

Goal on a 2-core CPU: the fused loss at least 5x eager torch for reduction 'mean',
forward+backward, at 2^24 float32 elements. On a GPU: at least 90% of the measured copy
bandwidth and 3.5x eager torch at 2^28. Usage:

    .venv/bin/python benchmarks/bench_bce.py [--log2-size 24] [--device cpu] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os

# Before torch allocates: put large CPU tensors on 2 MB pages (torch's own switch), so
# that page faults on each new 64 MB result do not swamp the arithmetic. Both eager and
# fused allocate their results the same way; set THP_MEM_ALLOC_ENABLE=0 to compare without.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch  # noqa: E402

from bce_helpers.bench import bce_gbps, copy_gbps, warm_memory  # noqa: E402
from bce_helpers.losses import compile_enabled  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-size", type=int, default=24)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device, dtype, n = torch.device(args.device), getattr(torch, args.dtype), 2**args.log2_size
    print(f"torch {torch.__version__}, {device}, {args.dtype}, n = 2^{args.log2_size}")
    thp = os.environ["THP_MEM_ALLOC_ENABLE"]
    print(f"torch.compile in use: {compile_enabled()}; THP_MEM_ALLOC_ENABLE={thp}")
    warm_memory(device)  # first touches of a VM's memory are slow: not what we measure
    copy = copy_gbps(n, dtype, device, args.repeats)
    print(f"copy bandwidth (the roofline): {copy:8.2f} GB/s")
    for mode in ("forward", "forward+backward"):
        gbps = bce_gbps(n, dtype, device, mode, args.repeats)
        for method, value in gbps.items():
            print(f"{mode:<17} {method:<19} {value:8.2f} GB/s  ({value / copy:5.1%} of copy)")
        print(f"{mode:<17} fused / eager torch: {gbps['fused'] / gbps['eager torch']:.1f}x")


if __name__ == "__main__":
    main()

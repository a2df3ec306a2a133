"""The fused BCE pass on the CPU as a small C kernel, compiled once per machine at first use.

The same formulas as `fused.one_pass` (e^-|x| as a polynomial, log1p as a short series),
for float32 inputs without weights, written so the C compiler vectorizes them: one loop that
reads each logit and target once and writes the gradient (or the per-element losses), the
losses summed in float32 over blocks of 256 elements and the blocks in float64. The
input is split among torch's intra-op threads (`torch.set_num_threads`), each block of it in
order, so a sum does not depend on timing. Measured against the inductor-compiled formulas
on a 2-core AMD EPYC at 2^24 float32, forward and gradient: 6.6-7.9 ms against 7.5-9.3 ms,
1.14x-1.39x (`benchmarks/bench_bce.py` prints both), and at 2^12 0.09 against 0.15 ms a
call; inductor's code converts every loss to float64 to keep its sum accurate, and pays
for it.

The library is built with the machine's C compiler (`$CC`, else cc, gcc or clang) into
`$BCE_HELPERS_CACHE_DIR` (default: a folder of this user's in the temp directory, which
only this user may write to), keyed by its source, the compiler and its version, its flags
and the CPU (its instruction-set flags on Linux), and written atomically. Where no compiler
builds it, `usable` says no and the fused loss takes its other paths;
BCE_HELPERS_CPU_KERNEL=0 turns it off (BCE_HELPERS_COMPILE=0 too, as for every compiled
path).
"""

from __future__ import annotations

import ctypes
import functools
import getpass
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from bce_helpers.fast.compiler import compile_enabled

BLOCK = 256  # elements summed in float32 before the block's sum joins the float64 total
MULTITHREAD_FROM = 2**16  # below this a thread costs more than it saves
MAX_THREADS = 64

_SOURCE = r"""
#include <math.h>
#include <stdint.h>

#define BLOCK {block}
#define MAX_THREADS {max_threads}

typedef struct {{
  const float *x, *y;
  float *grad, *loss;
  int64_t n;
  float scale;
  double sum;
  int bad;
}} part_t;

typedef struct {{
  float loss, grad;
}} pair_t;

typedef union {{
  float f;
  uint32_t u;
}} bits_t;

/* one element's loss and gradient (see bce_helpers.fast.fused.one_pass) */
static inline pair_t element(float x, float y, float scale) {{
  float a = x < 0.0f ? -x : x;
  a = a > {floor}f ? {floor}f : a; /* NaN stays NaN */
  /* e^-a = 2^-k e^f, k = round(a / ln 2), f = k ln 2 - a (ln 2 in two parts) */
  float k = rintf(a * {inv_ln2}f);
  float f = k * {ln2_high}f - a + k * {ln2_low}f;
  float p = {p0}f * f + {p1}f;
  p = p * f + {p2}f;
  p = p * f + {p3}f;
  p = p * f + {p4}f;
  float ef = p * (f * f) + f + 1.0f;
  /* 2^-k taken off the exponent bits; k in [0, 126], and 0 for NaN (ef is NaN then) */
  bits_t bits = {{ef}};
  bits.u -= (uint32_t)(k >= 0.0f ? k : 0.0f) << 23;
  float e = bits.f;
  float one_plus_e = 1.0f + e;
  /* log1p(e) = 2 atanh(s), s = e / (2 + e) */
  float s = e / (1.0f + one_plus_e);
  float z = s * s;
  float series = {a0}f * z;
  series = (series + {a1}f) * z;
  series = (series + {a2}f) * z;
  series = (series + {a3}f) * z;
  float log1p_e = s * (series + 2.0f);
  float r = 1.0f / one_plus_e; /* sigmoid(|x|) */
  float sigmoid = x >= 0.0f ? r : e * r;
  /* max(x, 0) - x y = x (c - y), c = 1 for x >= 0 */
  pair_t out = {{log1p_e + x * ((x >= 0.0f ? 1.0f : 0.0f) - y), (sigmoid - y) * scale}};
  return out;
}}

/* the pass over one part; grad and each are constants where it is called, so the compiler
   makes a loop for each combination */
static inline __attribute__((always_inline)) void pass_part(part_t *p, int grad_out,
                                                             int each_out) {{
  const float *restrict x = p->x, *restrict y = p->y;
  float *restrict grad = p->grad, *restrict loss = p->loss;
  const float scale = p->scale;
  const int64_t n = p->n;
  double total = 0.0;
  int bad = 0;
  for (int64_t b = 0; b < n; b += BLOCK) {{
    const int64_t end = n - b < BLOCK ? n : b + BLOCK;
    float acc = 0.0f;
    int block_bad = 0;
#pragma omp simd reduction(+ : acc) reduction(| : block_bad)
    for (int64_t j = b; j < end; j++) {{
      pair_t e = element(x[j], y[j], scale);
      if (grad_out) grad[j] = e.grad;
      if (each_out) loss[j] = e.loss;
      acc += e.loss;
      /* y (1 - y) >= 0 exactly on [0, 1], and is false for NaN */
      block_bad |= !(y[j] - y[j] * y[j] >= 0.0f);
    }}
    total += acc;
    bad |= block_bad;
  }}
  p->sum = total;
  p->bad = bad;
}}

static void pass_sum(part_t *p) {{ pass_part(p, 0, 0); }}
static void pass_sum_grad(part_t *p) {{ pass_part(p, 1, 0); }}
static void pass_each(part_t *p) {{ pass_part(p, 0, 1); }}
static void pass_each_grad(part_t *p) {{ pass_part(p, 1, 1); }}

static void pass(part_t *p) {{
  if (p->grad) {{
    if (p->loss) pass_each_grad(p); else pass_sum_grad(p);
  }} else {{
    if (p->loss) pass_each(p); else pass_sum(p);
  }}
}}

/* the pass over n elements on `threads` threads (OpenMP's): returns whether a target was
   bad */
int bce_fused(const float *x, const float *y, float *grad, float *loss, int64_t n,
              float scale, int threads, double *sum) {{
  part_t parts[MAX_THREADS];
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  int64_t per = ((n + threads - 1) / threads + BLOCK - 1) / BLOCK * BLOCK;
  for (int t = 0; t < threads; t++) {{
    int64_t start = per * t < n ? per * t : n;
    int64_t end = start + per < n ? start + per : n;
    part_t part = {{x + start, y + start, grad ? grad + start : 0, loss ? loss + start : 0,
                    end - start, scale, 0.0, 0}};
    parts[t] = part;
  }}
#pragma omp parallel for num_threads(threads) schedule(static, 1) if (threads > 1)
  for (int t = 0; t < threads; t++) pass(&parts[t]);
  double total = 0.0;
  int bad = 0;
  for (int t = 0; t < threads; t++) {{ /* in order: the sum does not depend on timing */
    total += parts[t].sum;
    bad |= parts[t].bad;
  }}
  *sum = total;
  return bad;
}}
"""

FLAGS = [
    "-O3",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=fast",  # a multiply and an add as one instruction, rounded once
    "-shared",
    "-fPIC",
]
# tried in turn: this CPU's vector instructions and OpenMP's threads, then without the one
# or the other (a compiler without OpenMP, such as Apple's clang, still vectorizes the
# `omp simd` loop, on one thread). With gcc on Linux the library asks for libgomp.so.1,
# the name of the libgomp torch's wheels load, so the two share one OpenMP runtime, as
# inductor's own CPU kernels do.
VARIANTS = [
    ["-march=native", "-fopenmp"],
    ["-fopenmp"],
    ["-march=native", "-fopenmp-simd"],
    ["-fopenmp-simd"],
]


def source() -> str:
    """The kernel's C source, with the constants of bce_helpers.fast.fused's formulas."""
    from bce_helpers.fast import formulas as fused

    a = [2 * c for c in reversed(fused.ATANH_SERIES[torch.float32])]
    p = fused.EXP_POLYNOMIAL
    return _SOURCE.format(
        block=BLOCK,
        max_threads=MAX_THREADS,
        floor=repr(fused.EXP_FLOOR_ARGUMENT),
        inv_ln2=repr(1 / math.log(2)),
        ln2_high=repr(fused.EXP_LN2_HIGH),
        ln2_low=repr(fused.EXP_LN2_LOW),
        **{f"p{i}": repr(c) for i, c in enumerate(p)},
        **{f"a{i}": repr(c) for i, c in enumerate(a)},
    )


def cache_dir() -> Path:
    """Where built libraries are kept: $BCE_HELPERS_CACHE_DIR, else a folder in the temp dir."""
    if configured := os.environ.get("BCE_HELPERS_CACHE_DIR"):
        return Path(configured)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no name
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"bce_helpers_{user}"


def private(directory: Path) -> bool:
    """Make directory (only its owner may write in it) and say whether it is this user's
    alone: a library in a folder another user can write to could be anyone's code."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not hasattr(os, "getuid"):  # Windows: the folder's ACL decides
        return True
    info = directory.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def compiler() -> str | None:
    """The C compiler to build with: $CC (which may carry arguments, as `ccache gcc`), else
    the first of cc, gcc and clang on PATH."""
    return os.environ.get("CC") or next(
        (found for name in ("cc", "gcc", "clang") if (found := shutil.which(name))), None
    )


def _compiler_version(command: list[str]) -> str:
    try:
        return subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_id() -> str:
    # -march=native code is for this CPU only: a shared cache must not hand it to another
    # (on Linux its instruction-set flags; elsewhere only what platform can say)
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()} {platform.platform()}"
    return next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")


def build(cc: str, directory: Path) -> Path | None:
    """Build the library with cc into directory (atomically), or find it built: its path, or
    None where cc cannot build it (or the directory cannot be written)."""
    code, command = source(), shlex.split(cc)
    try:
        if not private(directory):
            return None
    except OSError:
        return None
    machine = [*command, _compiler_version(command), _cpu_id()]
    for variant in VARIANTS:
        flags = FLAGS + variant
        key = hashlib.sha256("\0".join([code, *machine, *flags]).encode()).hexdigest()
        target = directory / f"bce_fused_{key[:24]}.so"
        if target.exists():
            return target
        try:
            fd, partial = tempfile.mkstemp(suffix=".so", dir=directory)
        except OSError:
            return None
        os.close(fd)
        try:
            done = subprocess.run(
                [*command, *flags, "-x", "c", "-", "-o", partial, "-lm"],
                input=code,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode == 0:
                os.replace(partial, target)
                return target
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            Path(partial).unlink(missing_ok=True)
    return None


@functools.cache
def library() -> ctypes.CDLL | None:
    """The kernel's library, built at the first call; None where it cannot be built."""
    cc = compiler()
    path = build(cc, cache_dir()) if cc else None
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:  # a temp dir mounted noexec, say: the other paths serve
        return None
    lib.bce_fused.restype = ctypes.c_int
    lib.bce_fused.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_float,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_double),
    ]
    return lib


def enabled() -> bool:
    """Whether the kernel may be used (BCE_HELPERS_CPU_KERNEL and BCE_HELPERS_COMPILE not 0)."""
    return compile_enabled() and os.environ.get("BCE_HELPERS_CPU_KERNEL", "1") != "0"


def usable(x: Tensor, y: Tensor | None = None) -> bool:
    """Whether the pass over x (and y) runs as this kernel: float32 on the CPU, when built."""
    same = y is None or (y.dtype == torch.float32 and y.device.type == "cpu")
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and same
        and enabled()
        and library() is not None
    )


def _pointer(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def forward(
    x: Tensor, y: Tensor, reduction: str, need_grad: bool
) -> tuple[Tensor, Tensor | None, bool]:
    """The pass over flat, contiguous float32 x and y: (loss, gradient or None, bad target)."""
    n = x.numel()
    grad = torch.empty_like(x) if need_grad else None
    each = torch.empty_like(x) if reduction == "none" else None
    total = ctypes.c_double()
    threads = torch.get_num_threads() if n >= MULTITHREAD_FROM else 1
    bad = library().bce_fused(
        _pointer(x),
        _pointer(y),
        _pointer(grad),
        _pointer(each),
        n,
        1 / n if reduction == "mean" else 1.0,
        threads,
        ctypes.byref(total),
    )
    if each is not None:
        loss = each
    else:
        value = total.value / n if reduction == "mean" else total.value
        loss = torch.tensor(value, dtype=torch.float32)
    return loss, grad, bool(bad)

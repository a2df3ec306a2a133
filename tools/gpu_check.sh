#!/usr/bin/env bash
# The suite's GPU check, on a machine with a CUDA device: the whole test suite (the fused
# loss's CUDA tests: no host sync, CUDA-graph capture, launches, torch.compile), nbval over
# the committed notebooks, every notebook with device="cuda" (05 also with its GPU options:
# CUDA-graph replay with each loss), the BCE benchmark against its goals in float32 and
# bfloat16 at every size from 2^18 to 2^28, the MLP benchmark, and the mutation score of
# the CUDA-only code (bce_helpers/fast/cuda_graph.py). Every figure is printed and kept in
# OUT_DIR/gpu-check.log; the exit status is 0 only if every step passed and every goal met.
#
#   make gpu-check                    # after the README's set-up (make setup)
#   bash tools/gpu_check.sh [OUT_DIR] # the same; OUT_DIR defaults to runs/gpu-check
#
# A CUDA machine with torch and triton but no package index: build the wheelhouse here
# (make wheelhouse WHEEL_PYTHON=3.12, the target's Python), copy the repository with
# build/wheelhouse there, then run PYTHON=python3 bash tools/gpu_check.sh: a Python that
# lacks a declared dependency gets a venv in OUT_DIR that sees its torch and triton
# (--system-site-packages) and installs the rest from the wheelhouse ($WHEELHOUSE).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-runs/gpu-check}
mkdir -p "$OUT"
log="$OUT/gpu-check.log"
: >"$log"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=torch
WHEELHOUSE=${WHEELHOUSE:-build/wheelhouse}

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: no CUDA device visible to $PYTHON (torch.cuda.is_available() is False): this check needs one" >&2
  exit 2
fi
if ! lacking=$("$PYTHON" tools/wheelhouse.py --missing); then
  if [ ! -f "$WHEELHOUSE/requirements.txt" ]; then
    echo "error: $PYTHON lacks $(echo $lacking) and there is no wheelhouse at $WHEELHOUSE: build it with make wheelhouse (on a machine with an index) and copy it here" >&2
    exit 2
  fi
  echo "installing $(echo $lacking) from $WHEELHOUSE into $OUT/venv" | tee -a "$log"
  "$PYTHON" -m venv --system-site-packages "$OUT/venv" &&
    "$OUT/venv/bin/python" -m pip install -q --no-index --find-links "$WHEELHOUSE" \
      -r "$WHEELHOUSE/requirements.txt" 2>&1 | tee -a "$log"
  if [ "${PIPESTATUS[0]}" -ne 0 ] || ! "$OUT/venv/bin/python" tools/wheelhouse.py --missing; then
    echo "error: installing from $WHEELHOUSE into $OUT/venv failed" >&2
    exit 2
  fi
  PYTHON=$OUT/venv/bin/python
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PATH=$OUT/venv/bin:$PATH
fi
"$PYTHON" -c "import torch, triton; print(f'{torch.cuda.get_device_name()}: torch {torch.__version__}, CUDA {torch.version.cuda}, triton {triton.__version__}')" | tee -a "$log"

failed=()
step() {
  local name=$1
  shift
  echo -e "\n=== $name: $*" | tee -a "$log"
  local start=$SECONDS
  "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  echo "=== $name: exit $status after $((SECONDS - start)) s" | tee -a "$log"
  [ "$status" -eq 0 ] || failed+=("$name")
}

step tests "$PYTHON" -m pytest -n 4 --dist loadfile --no-loadscope-reorder tests
step nbval "$PYTHON" -m pytest --nbval-lax notebooks
step notebooks-on-cuda "$PYTHON" -m bce_suite run -p device cuda --out "$OUT/notebooks-cuda" --no-progress
step 05-gpu-options "$PYTHON" -m bce_suite sweep 05 -p device cuda -p cuda_graph False True \
  -p loss bce bce_with_logits fused_bce_with_logits --out "$OUT/05-gpu-options" --no-progress
# each figure the median over interleaved rounds, correctness checked at every size (both
# launch variants), each goal compared: a miss fails the step
sizes=$(seq 18 28)
step bench-bce-float32 "$PYTHON" benchmarks/bench_bce.py --device cuda --log2-sizes $sizes \
  --runs 3 --rounds 7 --goals
step bench-bce-bfloat16 "$PYTHON" benchmarks/bench_bce.py --device cuda --dtype bfloat16 \
  --log2-sizes $sizes --rounds 7 --goals
step bench-mlp-training "$PYTHON" benchmarks/bench_mlp_training.py --device cuda
# The CUDA-graph code's tests run only here: its mutation score (goal 90%, as make mutation's).
step mutation-cuda-graph "$PYTHON" tools/mutation.py fast/cuda_graph --jobs 4 --min-score 90

echo | tee -a "$log"
if [ ${#failed[@]} -eq 0 ]; then
  echo "GPU check: every step passed; figures in $log" | tee -a "$log"
else
  echo "GPU check: failed steps: ${failed[*]}; see $log" | tee -a "$log"
  exit 1
fi

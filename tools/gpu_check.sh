#!/usr/bin/env bash
# The suite's GPU check, on a machine with a CUDA device: the whole test suite, nbval over
# the committed notebooks, every notebook with device="cuda" (05 also with its GPU options:
# CUDA-graph replay with each loss), the GPU benchmarks, and the mutation score of the
# CUDA-only code (bce_helpers/cuda_graph.py). Every figure is printed and
# kept in OUT_DIR/gpu-check.log; the exit status is 0 only if every step passed.
#
#   make gpu-check                    # after the README's set-up (make setup)
#   bash tools/gpu_check.sh [OUT_DIR] # the same; OUT_DIR defaults to runs/gpu-check
#
# A CUDA machine with torch but no package index: here, fetch the other wheels with
# ../shared/tools/cuda-wheels.sh (into .whl/), copy the repository and .whl/ there, then:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD JUPYTER_PATH=/tmp/site/share/jupyter KERAS_BACKEND=torch
#   PYTHON=python3 bash tools/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-runs/gpu-check}
mkdir -p "$OUT"
log="$OUT/gpu-check.log"
: >"$log"
export PYTHONUNBUFFERED=1

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: no CUDA device visible to $PYTHON (torch.cuda.is_available() is False): this check needs one" >&2
  exit 2
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
step notebooks-on-cuda "$PYTHON" -m bce_helpers run -p device cuda --out "$OUT/notebooks-cuda" --no-progress
step 05-gpu-options "$PYTHON" -m bce_helpers sweep 05 -p device cuda -p cuda_graph False True \
  -p loss bce bce_with_logits fused_bce_with_logits --out "$OUT/05-gpu-options" --no-progress
step bench-bce-float32 "$PYTHON" benchmarks/bench_bce.py --device cuda --log2-sizes 18 20 22 24 26 28 --runs 3
step bench-bce-bfloat16 "$PYTHON" benchmarks/bench_bce.py --device cuda --dtype bfloat16 --log2-sizes 28
step bench-mlp-training "$PYTHON" benchmarks/bench_mlp_training.py --device cuda
# The CUDA-graph code's tests run only here: its mutation score (goal 90%, as make mutation's).
step mutation-cuda-graph "$PYTHON" tools/mutation.py cuda_graph --jobs 4 --min-score 90

echo | tee -a "$log"
if [ ${#failed[@]} -eq 0 ]; then
  echo "GPU check: every step passed; figures in $log" | tee -a "$log"
else
  echo "GPU check: failed steps: ${failed[*]}; see $log" | tee -a "$log"
  exit 1
fi

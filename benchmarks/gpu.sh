#!/usr/bin/env bash
# Throughput on a GPU machine: fp32 / bf16 / fp16, each with and without torch.compile and channels-last, in one
# process; then, when the machine has 2 or more GPUs, the same under DDP (torchrun, NCCL) on all of them.
# Prints a table per run and writes JSON under $OUT (when set) or benchmarks/results/gpu/.
#
#   bash benchmarks/gpu.sh                  # from the repository root; uses .venv (made if missing)
#   OUT=/some/dir STEPS=300 bash benchmarks/gpu.sh
#
# Set PYTHON to use an existing interpreter that has a CUDA build of torch (no venv is made then).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu}"
STEPS="${STEPS:-200}"
BATCH="${BATCH:-256}"
mkdir -p "$OUT"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    # torch from PyPI is the CUDA build on Linux x86-64; an existing CUDA torch is kept as it is
    .venv/bin/pip install --quiet torch torchvision
  fi
  .venv/bin/pip install --quiet -e .
  PYTHON=.venv/bin/python
fi

"$PYTHON" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch: this script measures GPU throughput"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} x "
      f"{torch.cuda.get_device_name(0)}; bf16 supported: {torch.cuda.is_bf16_supported()}")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpus.txt" || true

echo "== one process, every precision x compile x channels-last =="
"$PYTHON" benchmarks/throughput.py --device cuda --batch-size "$BATCH" --steps "$STEPS" --json-out "$OUT"

GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
if (( GPUS >= 2 )); then
  echo "== DDP: $GPUS processes, one per GPU, global batch $BATCH x $GPUS =="
  "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node="$GPUS" --max-restarts=0 \
    benchmarks/throughput.py --device cuda --batch-size $((BATCH * GPUS)) --steps "$STEPS" --precisions fp32 bf16 \
    --json-out "$OUT"
fi
echo "results: $OUT"

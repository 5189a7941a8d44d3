#!/usr/bin/env bash
# Run: bash benchmarks/perf/gpu_train_check.sh            (on a lent GPU; see ../shared/docs/gpu.md)
# CPU dry run of the whole script with toy widths:  TINY=1 PY=.venv/bin/python bash benchmarks/perf/gpu_train_check.sh
#
# The paper recipe's training settings (LoRA r16/alpha 32 on all LM linears, bf16, 768x768 images,
# per-device batch 4, gradient checkpointing) on a random-weight Qwen3-VL at 32B widths with the
# text depth cut to LAYERS, launched plain and with DeepSpeed ZeRO-3 (torchrun, 1 process).
# Prints samples/s, tokens/s, an MFU estimate and peak GPU memory as a table, last.
# Knobs (env): LAYERS=8 STEPS=50 BATCH=4 PIXELS=589824 WORK=<tmp dir> PY=python3 TINY=0
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PY:-python3}
LAYERS=${LAYERS:-8}
STEPS=${STEPS:-50}
BATCH=${BATCH:-4}
PIXELS=${PIXELS:-589824}     # 768*768 -> 576 image tokens
TINY=${TINY:-0}
WORK=${WORK:-$(mktemp -d)}
if [ "$TINY" = 1 ]; then LAYERS=2; STEPS=${STEPS_TINY:-8}; BATCH=2; PIXELS=65536; fi

# 1. Packages: the device image lacks llamafactory/deepspeed/pydantic; install the wheels from .whl/
if ! "$PY" -c "import llamafactory, deepspeed, pydantic" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: llamafactory/deepspeed not importable and no .whl/*.whl to install (see ../shared/docs/gpu.md)" >&2
    exit 2
  fi
  SITE=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # fracdata from this checkout
export PATH="$(dirname "$(command -v "$PY")"):$PATH"   # torchrun beside the interpreter (no readlink)
export HF_HUB_OFFLINE=1 DISABLE_VERSION_CHECK=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export LLAMAFACTORY_VERBOSITY=${LLAMAFACTORY_VERBOSITY:-WARN}

# 2. Fail fast (a failed device call still costs machine time)
"$PY" - <<'PYEOF'
import torch, transformers, llamafactory, deepspeed, peft, fracdata
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU dry run)"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, llamafactory {llamafactory.__version__}, "
      f"deepspeed {deepspeed.__version__}, peft {peft.__version__}; GPU: {gpu}")
PYEOF
command -v torchrun >/dev/null || { echo "error: torchrun not on PATH" >&2; exit 2; }

# 3. Model, data, the two recipes
TINY_FLAG=""; [ "$TINY" = 1 ] && TINY_FLAG="--tiny"
"$PY" benchmarks/perf/gpu_train_check.py prepare "$WORK" $TINY_FLAG --layers "$LAYERS" --steps "$STEPS" \
  --batch "$BATCH" --pixels "$PIXELS"

# 4. Runs: a failure is reported in the table, the other variant still runs
"$PY" benchmarks/perf/gpu_train_check.py train "$WORK/plain.yaml" 2>&1 | tail -n 15 || echo "plain run failed"
torchrun --standalone --nproc_per_node 1 benchmarks/perf/gpu_train_check.py train "$WORK/zero3.yaml" 2>&1 \
  | tail -n 15 || echo "zero3 run failed"

# 5. The table, last
"$PY" benchmarks/perf/gpu_train_check.py report "$WORK"

#!/usr/bin/env bash
# Run: bash benchmarks/perf/gpu_train_check.sh        (one GPU, ~5-7 min on an H200; see ../shared/docs/gpu.md)
# CPU dry run (CI: tests/test_gpu_check.py):  DRY_RUN=1 PY=.venv/bin/python bash benchmarks/perf/gpu_train_check.sh
#
# On one card, in one call: the paper recipe exactly as rendered (ZeRO-3 under torchrun, 1 x 4,
# gradient checkpointing) and the launch `fracdata train` plans for the real Qwen3-VL-32B on this
# card, each at two text depths of a random model at Qwen3-VL-32B widths (768x768 images), so the
# per-layer cost extrapolates to 64 layers; then a micro-benchmark of the vision patch embedding
# (Conv3d) forward and backward. Prints samples/s, tokens/s, MFU, peak memory and the projected
# wall time of the full paper run per launch; the table comes last.
# The planned launch runs twice: with the Conv3d patch embedding as written (planned) and fused into
# one matmul (fused: what `fracdata train` does by default, fracdata/train/fusion.py).
# Knobs (env): DEPTHS=4,8 STEPS=12 ARMS=paper,planned,fused (add ,nogc: ~+90 s) RUN_TIMEOUT=240 WORK=<tmp>
#              PY=python3 DRY_RUN=0
# For a lent H200 (Python 3.12, torch 2.11, no llamafactory/deepspeed/pydantic, no network):
#   here, once:  PY=.venv/bin/python bash benchmarks/perf/gpu_train_check.sh wheels   # -> .whl/ (~21 MB, git-ignored)
#   device:      run(command="bash benchmarks/perf/gpu_train_check.sh", carry=[".whl"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = wheels ]; then  # the wheels shared/docs/gpu.md lists, for the device's Python 3.12
  PY=${PY:-python3}
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    llamafactory==0.9.5 transformers==5.6.0 tokenizers==0.22.2 peft==0.18.1 trl==0.24.0 accelerate==1.11.0 \
    datasets==4.0.0 fire==0.7.1 omegaconf==2.4.0 tyro==0.8.14 docstring_parser shtab termcolor hjson dill==0.3.8 \
    multiprocess==0.70.16 fsspec==2025.3.0 pydantic==2.12.3 pydantic_core==2.41.4 annotated-types==0.7.0 \
    typing-inspection==0.4.2 || exit 2
  # deepspeed publishes only a source archive: a pure-Python wheel, built against the torch of $PY
  ls .whl/deepspeed-*.whl >/dev/null 2>&1 || "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl deepspeed==0.19.8 || exit 2
  echo "wrote .whl/: $(ls .whl/*.whl | wc -l) wheels, $(du -sh .whl | cut -f1)"
  exit 0
fi

PY=${PY:-python3}
DRY_RUN=${DRY_RUN:-0}
DEPTHS=${DEPTHS:-4,8}
STEPS=${STEPS:-12}
ARMS=${ARMS:-paper,planned,fused}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
WORK=${WORK:-$(mktemp -d)}
DRY=""
if [ "$DRY_RUN" = 1 ]; then DEPTHS=1,2; STEPS=${STEPS_DRY:-3}; DRY="--dry-run"; fi
T0=$SECONDS

# 1. Packages: the device image lacks llamafactory/deepspeed/pydantic; install the wheels from .whl/
if ! "$PY" -c "import llamafactory, deepspeed, pydantic" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: llamafactory/deepspeed not importable and no .whl/*.whl to install (see ../shared/docs/gpu.md)" >&2
    exit 2
  fi
  SITE=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 2
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # fracdata from this checkout
export PATH="$(dirname "$(command -v "$PY")"):$PATH"   # torchrun beside the interpreter (no readlink)
export HF_HUB_OFFLINE=1 DISABLE_VERSION_CHECK=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export LLAMAFACTORY_VERBOSITY=${LLAMAFACTORY_VERBOSITY:-WARN}

# 2. Fail fast (a failed device call still costs machine time)
"$PY" - <<'PYEOF' || exit 2
import torch, transformers, llamafactory, deepspeed, peft, fracdata
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU dry run)"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, llamafactory {llamafactory.__version__}, "
      f"deepspeed {deepspeed.__version__}, peft {peft.__version__}; GPU: {gpu}")
PYEOF
command -v torchrun >/dev/null || { echo "error: torchrun not on PATH" >&2; exit 2; }

# 3. Models, data, one config per arm and depth
"$PY" benchmarks/perf/gpu_train_check.py prepare "$WORK" $DRY --depths "$DEPTHS" --steps "$STEPS" --arms "$ARMS" || exit 2
"$PY" benchmarks/perf/gpu_train_check.py conv3d "$WORK" $DRY || echo "conv3d micro-benchmark failed"
echo "prepared in $((SECONDS - T0)) s"

# 4. Runs: DeepSpeed arms under torchrun (1 process, as `fracdata train` launches them), the others in
#    one plain process; a failure is reported in the table and the other runs still go.
for arm in ${ARMS//,/ }; do
  for d in ${DEPTHS//,/ }; do
    cfg="$WORK/${arm}_L${d}.yaml"
    if grep -q '^deepspeed:' "$cfg"; then
      launch=(torchrun --standalone --nproc_per_node 1 benchmarks/perf/gpu_train_check.py train "$cfg")
    else
      launch=("$PY" benchmarks/perf/gpu_train_check.py train "$cfg")
    fi
    echo "== $arm, $d text layers: ${launch[*]}"
    timeout "$RUN_TIMEOUT" "${launch[@]}" > "$WORK/${arm}_L${d}.log" 2>&1 || echo "$arm L$d failed or timed out"
    tail -n 4 "$WORK/${arm}_L${d}.log"
  done
done
echo "all runs done at $((SECONDS - T0)) s"

# 5. The table, last
"$PY" benchmarks/perf/gpu_train_report.py "$WORK"

"""The GPU check (benchmarks/perf/gpu_train_check.sh): its FLOP arithmetic by hand, and its CPU dry run.

No GPU is needed: the dry run builds toy-width models and runs every step of the script on CPU
(both launches at two depths, ZeRO-3 under torchrun, the Conv3d micro-benchmark, the table).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fracdata.train import sizes

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT / "benchmarks" / "perf"


def _report():
    spec = importlib.util.spec_from_file_location("gpu_train_report", PERF / "gpu_train_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_useful_flops_and_mfu_for_the_32b_widths():
    s = sizes.sizes(sizes.QWEN3VL_32B, lora_rank=16)
    # language-model matmul weights, no input embedding: 64 layers x (q 5120x8192 + k, v 5120x1024 + o 8192x5120
    # + gate, up 5120x25,600 + down 25,600x5120 = 487,587,840) + lm_head 151,936 x 5120 = 31,983,534,080
    assert s.lm_matmul == 64 * 487_587_840 + 151_936 * 5120 == 31_983_534_080
    # vision, per patch: Conv3d 1536x1152 + 27 blocks x (qkv 1152x3456 + proj 1152x1152 + fc1, fc2 1152x4304)
    assert s.vision_patch_matmul == 1536 * 1152 + 27 * (1152 * 3456 + 1152 * 1152 + 2 * 1152 * 4304) == 412_839_936
    # per merged token: 4 mergers x (4608x4608 + 4608x5120)
    assert s.vision_merge_matmul == 4 * (4608 * 4608 + 4608 * 5120) == 179_306_496
    # one sample of 730 LM tokens, 576 of them image tokens (768x768 px = 2304 patches):
    # 4 x 31,983,534,080 x 730 = 93,391,919,513,600 (frozen-base LoRA: forward + input gradients)
    # + 2 x 412,839,936 x 2304 = 1,902,366,425,088 + 2 x 179,306,496 x 576 = 206,561,083,392 (frozen vision: forward)
    useful = sizes.useful_flops(s, lm_tokens=730, image_tokens=576)
    assert useful == 93_391_919_513_600 + 1_902_366_425_088 + 206_561_083_392 == 95_500_847_022_080
    # 2 samples/s on an H200 (989.4 dense bf16 TFLOPS): 191.0 TFLOP/s = 19.30% MFU
    assert _report().mfu(useful, 2.0, 989.4) == pytest.approx(191.00169404416e12 / 989.4e12)
    assert round(100 * _report().mfu(useful, 2.0, 989.4), 2) == 19.30


def test_the_full_paper_run_it_projects():
    # 13,168 images: round(1,316.8) = 1,317 validation, 11,851 training x 4 (3 rotations) = 47,404 rows x 3 epochs
    assert _report().paper_run() == (142_212, 1_317)


@pytest.mark.slow  # the whole GPU script on CPU (six tiny trainings): ~5 min
def test_cpu_dry_run_runs_every_step_and_prints_the_table_last(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PY": sys.executable, "WORK": str(tmp_path / "work"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(PERF / "gpu_train_check.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout.rstrip("\n").splitlines()
    table = out[out.index("| arm | launch | text layers | samples/s | tokens/s | MFU | peak alloc GB | "
                          "projected paper run |"):]
    assert len(table) == 2 + 9  # header, rule, 3 launches x (depth 1, depth 2, fit at 64 layers): nothing after it
    # the dry run plans for an H200 (141 GB): no DeepSpeed, 4 x 1; checkpointing as its estimate says
    plan = json.loads((tmp_path / "work" / "meta.json").read_text())["plan"]
    assert (plan["deepspeed"], plan["per_device_train_batch_size"], plan["gradient_accumulation_steps"]) == (None, 4, 1)
    planned = f"no DeepSpeed, 4 x 1, checkpointing {'on' if plan['gradient_checkpointing'] else 'off'}"
    assert [row.split(" | ")[:3] for row in table[2:]] == [
        ["| paper", "ds_z3, 1 x 4, checkpointing on", d] for d in ("1", "2", "**64 (fit)**")] + [
        ["| planned", planned, d] for d in ("1", "2", "**64 (fit)**")] + [
        ["| fused", planned + ", fused patch embedding", d] for d in ("1", "2", "**64 (fit)**")]
    fused = json.loads((tmp_path / "work" / "model_L1_fused" / "config.json").read_text())["fusion_config"]
    assert fused == {"patch_embeddings": True} and (tmp_path / "work" / "fused_L1.json").is_file()
    assert "not measured on a GPU" in proc.stdout and "failed" not in "\n".join(table)
    assert "planned launch vs the paper recipe as rendered, at 64 layers: " in proc.stdout
    assert "fused patch embedding vs the Conv3d as written (the planned launch both times), at 64 layers: " in proc.stdout
    assert "patch embedding (torch " in proc.stdout and "Conv3d forward" in proc.stdout

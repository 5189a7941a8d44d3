"""The projected wall time of a planned launch, at a stated MFU band: printed with every plan.

  hours = training samples x useful FLOPs per sample / (GPUs x dense bf16 peak x MFU)
useful FLOPs per sample: fracdata.train.sizes.useful_flops at the plan's tokens per sample (its
image tokens: the dataset's, else image_max_pixels / 1,024); the peak: fracdata.train.gpus, by the
card's name (this machine's) or its memory (--gpu-memory-gb, the assumption stated).
MFU band 20-30%: this LoRA on Qwen3-VL-32B widths on one H200 ran at 22-23% of the peak over
whole runs and ~31% steady at 8 text layers (../shared/docs/gpu.md; the real 64 layers carry a
smaller fixed part); a ZeRO-3 launch's all-gathers are not in the band.
ZeRO-3 with CPU offload is bound by the host link instead: every micro-batch gathers all the
frozen bf16 weights to the GPU once per pass (forward, the checkpoint recompute, backward: 3
passes with gradient checkpointing, 2 without). For the paper recipe on one 80 GB card, 4 per
device: 142,212 / 4 = 35,553 micro-batches x 3 x 66.7 GB / 25 GB/s = 8.0 s each = 79 h, against
18-27 h of compute: the transfer governs.
Training samples: max_steps x effective batch, else training rows x epochs (the dataset's, when
read; without a dataset, the paper's 13,168 images (docs/study.md) as `fracdata build` splits and rotates them:
(13,168 - 1,317) x 4 x 3 epochs = 142,212). Evaluations are left out (~6% more for the paper recipe).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MFU_BAND = (0.20, 0.30)
HOST_TO_DEVICE_GBPS = 25.0  # PCIe Gen4 x16 sustained; a Gen5 host link up to ~2x faster
STUDY_IMAGES, VAL_FRACTION, COPIES = 13168, 0.1, 4  # docs/study.md; the builder's defaults


def study_samples(epochs: float) -> int:
    val = round(VAL_FRACTION * STUDY_IMAGES)  # 1,317
    return int((STUDY_IMAGES - val) * COPIES * epochs)


def train_rows(config: dict) -> int | None:
    """Rows of the recipe's training datasets (dataset_info.json's files), or None when unreadable."""
    folder = Path(str(config.get("dataset_dir") or ""))
    try:
        info = json.loads((folder / "dataset_info.json").read_text())
        rows = 0
        for name in str(config.get("dataset") or "").split(","):
            text = (folder / info[name.strip()]["file_name"]).read_text()
            rows += len(json.loads(text)) if text.lstrip().startswith("[") else sum(1 for x in text.splitlines() if x.strip())
        return rows
    except (OSError, ValueError, KeyError, TypeError):
        return None


def samples(config: dict, batch: int, dataset_read: bool) -> tuple[int, str]:
    steps = int(config.get("max_steps", -1) or -1)
    if steps > 0:
        return steps * batch, f"max_steps {steps:,} x effective batch {batch}"
    epochs = float(config.get("num_train_epochs", 3.0))
    rows = train_rows(config) if dataset_read else None
    if rows:
        return int(rows * epochs), f"{rows:,} training rows x {epochs:g} epochs"
    return study_samples(epochs), (f"no dataset read: the paper's {STUDY_IMAGES:,} images (docs/study.md) as `fracdata build` "
                                   f"splits and rotates them, x {epochs:g} epochs")


def project(plan, s, config: dict, budget, gpu_name: str | None) -> dict:
    """{"line": what the plan prints (lines after the first indented), and the figures when there is one}."""
    from fracdata.train.gpus import peak_tflops
    from fracdata.train.sizes import useful_flops

    hw = plan.hardware
    if hw.gpus_per_node == 0:
        return {"line": "projected wall time: none for a CPU run (no GPU peak to scale from)"}
    if s is None:
        return {"line": "projected wall time: none (model size unknown to the planner)"}
    peak, card = peak_tflops(gpu_name, hw.gpu_memory_gb)
    if peak is None:
        return {"line": f"projected wall time: none ({card})"}
    # as the plan counts them: the longest row rounded up to 8, else cutoff_len
    tokens = plan.tokens_per_sample or (-(-budget.need // 8) * 8 if budget is not None else int(config.get("cutoff_len", 2048)))
    image = max(budget.image - 2, 0) if budget is not None else int(config.get("image_max_pixels", 768 * 768)) // 1024
    flops = useful_flops(s, tokens, min(image, tokens))
    n, note = samples(config, plan.effective_batch, budget is not None)
    hours = [n * flops / (hw.world * peak * 1e12 * mfu) / 3600 for mfu in reversed(MFU_BAND)]  # fast, slow
    lo, hi = MFU_BAND
    out = {"samples": n, "samples_note": note, "useful_tflop_per_sample": round(flops / 1e12, 2), "card": card,
           "peak_tflops": peak, "mfu_band": list(MFU_BAND), "hours": [round(h, 1) for h in hours]}
    lines = [f"projected wall time: {_time(*hours)} at {lo:.0%}-{hi:.0%} MFU: {n:,} samples x {_flop(flops)} / "
             f"({hw.world} GPU x {peak:g} TFLOPS dense bf16)",
             f"  samples: {note}; card: {card}"]
    if plan.deepspeed and "offload" in str(plan.deepspeed):
        passes = 3 if plan.gradient_checkpointing else 2
        weights = s.total * 2 / 1e9  # bf16
        micro = math.ceil(n / (hw.world * plan.per_device_train_batch_size))
        floor = micro * passes * weights / HOST_TO_DEVICE_GBPS / 3600
        out.update(offload_floor_hours=round(floor, 1), host_to_device_gbps=HOST_TO_DEVICE_GBPS)
        lines.append(f"  CPU offload gathers the {weights:.1f} GB of bf16 weights onto the GPU {passes}x per micro-batch: "
                     f"{micro:,} x {passes} x {weights:.1f} GB / {HOST_TO_DEVICE_GBPS:g} GB/s = at least {_h(floor)}"
                     + (", which governs" if floor > hours[1] else ""))
    line = "\n".join(lines)
    out["line"] = line
    return out


def _time(lo_h: float, hi_h: float) -> str:
    """"18-27 h", "4.4-6.6 h", "12-18 min", "3-5 s"."""
    for scale, unit in ((1, "h"), (60, "min"), (3600, "s")):
        if hi_h * scale >= 1 or unit == "s":
            a, b = lo_h * scale, hi_h * scale
            return (f"{a:.1f}-{b:.1f}" if b < 10 else f"{a:.0f}-{b:.0f}") + f" {unit}"
    return ""


def _h(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"


def _flop(f: float) -> str:
    return next(f"{f / d:.1f} {u}" for d, u in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1.0, "FLOP")) if f >= d or u == "FLOP")

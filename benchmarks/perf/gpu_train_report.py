"""The GPU check's table: per launch and depth, then extrapolated to 64 layers; the paper-run projection.

    python gpu_train_report.py WORK      # after gpu_train_check.sh's runs; prints the table last

Read at 64 layers from a straight line through the two depths' seconds per sample (every layer
costs the same; the fixed part is the intercept). MFU = useful FLOPs per sample x samples/s over
the card's dense bf16 peak, useful FLOPs from fracdata.train.sizes.useful_flops (no recompute).
Projected paper run = (training samples + evaluated rows x the forward-only share) x seconds per
sample at 64 layers; the FLOP floor = training samples x useful FLOPs / peak.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Dense bf16 peaks per card, told apart by name and memory (an H100 PCIe peaks at 756.5, not the
# SXM's 989.4): fracdata/train/gpus.py, shared with the launch plan's projected wall time.
from fracdata.train.gpus import peak_tflops  # noqa: E402,F401  (gpu_train_check.py imports it from here)
# The full paper run as fracdata builds it from the paper's 13,168 images (docs/study.md): a 10% validation split
# by image (round(1,316.8) = 1,317, never rotated), 11,851 training images each with 90/180/270
# degree copies = 47,404 rows, 3 epochs = 142,212 training samples; 20 evaluations (eval_steps 0.05).
PAPER_IMAGES, VAL_FRACTION, COPIES, EPOCHS, EVALS = 13168, 0.1, 4, 3, 20


def paper_run(images: int = PAPER_IMAGES) -> tuple[int, int]:
    """(training samples over all epochs, validation rows) of the full paper run."""
    val = round(VAL_FRACTION * images)
    return (images - val) * COPIES * EPOCHS, val


def mfu(useful_flops_per_sample: float, samples_per_s: float, peak: float) -> float:
    """Useful FLOP/s over the card's dense bf16 peak (TFLOPS)."""
    return useful_flops_per_sample * samples_per_s / (peak * 1e12)


def _fit(xs: list[int], ys: list[float], at: int) -> float:
    """Straight line through the two depths' values, read at `at` layers."""
    (x1, y1), (x2, y2) = (xs[0], ys[0]), (xs[-1], ys[-1])
    return y1 + (y2 - y1) / (x2 - x1) * (at - x1)


def report(work: Path) -> None:
    from fracdata.train import sizes as sz

    meta = json.loads((work / "meta.json").read_text())
    depths, peak, lm, img = meta["depths"], meta["peak_tflops"], meta["lm_tokens"], meta["image_tokens"]
    full = sz.sizes(meta["full_config"], 16)
    useful = {d: sz.useful_flops(sz.sizes(sz.load_config(work / f"model_L{d}"), 16), lm, img) for d in depths}
    useful[full.layers] = sz.useful_flops(full, lm, img)
    samples, val = paper_run()
    floor_h = samples * useful[full.layers] / (peak * 1e12) / 3600 if peak else None
    pct = (lambda x: f"{100 * x:.1f}%") if peak else (lambda x: "n/a")
    rows, t64 = [], {}
    for arm in meta["arms"]:
        runs = {d: json.loads((work / f"{arm}_L{d}.json").read_text()) for d in depths if (work / f"{arm}_L{d}.json").is_file()}
        launch = meta["launch"][arm]
        for d in depths:
            if d not in runs:
                rows.append(f"| {arm} | {launch} | {d} | failed: no {arm}_L{d}.json (its log is above) | | | | |")
                continue
            r = runs[d]
            sps = r["steady_samples_s"]
            mem = f"{r['peak_alloc_gb']:.1f}" if r["peak_alloc_gb"] is not None else "n/a"
            rows.append(f"| {arm} | {launch} | {d} | {sps:.2f} | {sps * lm:,.0f} | "
                        f"{pct(mfu(useful[d], sps, peak)) if peak else 'n/a'} | {mem} | |")
        if len(runs) == len(depths) and len(depths) > 1:
            t = _fit(depths, [1 / runs[d]["steady_samples_s"] for d in depths], full.layers)
            t64[arm] = t
            mem = (f"{_fit(depths, [runs[d]['peak_alloc_gb'] for d in depths], full.layers):.1f}"
                   if runs[depths[0]]["peak_alloc_gb"] is not None else "n/a")
            share = 2 / 4 if "checkpointing off" in launch else 2 / 6  # evaluation = forward only
            hours = (samples + EVALS * val * share) * t / 3600
            vs = f"{hours:.1f} h ({hours / floor_h:.1f}x the floor)" if floor_h else f"{hours:.1f} h"
            rows.append(f"| {arm} | {launch} | **{full.layers} (fit)** | {1 / t:.2f} | {lm / t:,.0f} | "
                        f"{pct(mfu(useful[full.layers], 1 / t, peak)) if peak else 'n/a'} | {mem} | {vs} |")
    conv = json.loads((work / "conv3d.json").read_text()) if (work / "conv3d.json").is_file() else None
    print(f"\n{meta['card']}{'' if peak else ' -- not measured on a GPU: a CPU dry run, the figures mean nothing'}"
          + (f"; MFU against {meta.get('peak_card')}: {peak} TFLOPS dense bf16" if peak else ""))
    print(f"random Qwen3-VL at {'toy' if meta['dry_run'] else 'Qwen3-VL-32B'} widths, text depths {depths} "
          f"(full model: {full.layers} layers, {full.total / 1e6:,.1f}M params), {lm} LM tokens/sample "
          f"({img} image), {meta['steps']} steps per run (first 2 left out)")
    print(f"useful FLOPs/sample at {full.layers} layers: 4 x {full.lm_matmul:,} LM matmul weights x {lm} tokens + "
          f"vision 2 x {full.vision_patch_matmul:,} x {img * full.merge} patches + 2 x {full.vision_merge_matmul:,} x "
          f"{img} = {useful[full.layers]:.4g}; peak {peak or 'n/a'} TFLOPS dense bf16")
    print(f"full paper run: {samples:,} training samples ({PAPER_IMAGES:,} images, {val:,} for validation, x{COPIES} "
          f"rotations, {EPOCHS} epochs) + {EVALS} evaluations of {val:,} rows; FLOP floor "
          + (f"{floor_h:.2f} h" if floor_h else "n/a"))
    if "paper" in t64 and "planned" in t64:
        print(f"planned launch vs the paper recipe as rendered, at {full.layers} layers: "
              f"{t64['paper'] / t64['planned']:.2f}x the samples/s (same card, same run)")
    if "planned" in t64 and "fused" in t64:
        print(f"fused patch embedding vs the Conv3d as written (the planned launch both times), at {full.layers} "
              f"layers: {t64['planned'] / t64['fused']:.2f}x the samples/s (same card, same run)")
    if conv:
        f, b = conv["forward_ms"], conv["forward_backward_ms"]
        print(f"patch embedding (torch {conv['torch']}, {conv['patches']} patches): Conv3d forward {f['conv3d']:.2f} ms "
              f"= {f['conv3d'] / f['matmul']:.1f}x the same matmul; forward+backward {b['conv3d']:.2f} ms = "
              f"{b['conv3d'] / b['matmul']:.1f}x")
    print("\n| arm | launch | text layers | samples/s | tokens/s | MFU | peak alloc GB | projected paper run |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    report(Path(sys.argv[1]))

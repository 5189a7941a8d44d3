"""Helpers for gpu_train_check.sh: build a random Qwen3-VL at 32B widths, a dataset, recipes; time runs.

    python gpu_train_check.py prepare WORK [--tiny] [--layers 8] [--steps 50] [--batch 4] [--pixels 589824]
    python gpu_train_check.py train WORK/plain.yaml      # (under torchrun for ZeRO-3) -> WORK/plain.json
    python gpu_train_check.py report WORK

Qwen3-VL-32B widths: text hidden 5120, 64 heads / 8 KV heads of 128, MLP 25,600, vocab 151,936;
vision 27 blocks x 1152 (MLP 4304, 16 heads), deepstack at blocks 8/16/24. The text depth is
cut (--layers, default 8 of 64) so the model fits and builds in seconds; the per-token cost of
the layers that remain is the real one. The tokenizer/processor are the tiny model's (Qwen's
own tokenizer cannot be downloaded on the device), so text lengths are close to, not equal to,
Qwen's. --tiny uses toy widths for a CPU dry run of the whole script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, per GPU


def _widths(tiny: bool, layers: int) -> tuple[dict, dict]:
    if tiny:
        text = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=16, vocab_size=1024, rope_parameters={"rope_type": "default", "rope_theta": 5e6,
                                                                   "mrope_section": [4, 2, 2], "mrope_interleaved": True})
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                      num_position_embeddings=256, deepstack_visual_indexes=[0])
    else:
        text = dict(hidden_size=5120, intermediate_size=25600, num_attention_heads=64, num_key_value_heads=8,
                    head_dim=128, vocab_size=151936, rope_parameters={"rope_type": "default", "rope_theta": 5e6,
                                                                      "mrope_section": [24, 20, 20], "mrope_interleaved": True})
        vision = dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=5120,
                      num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24])
    text.update(num_hidden_layers=layers, max_position_embeddings=262144, tie_word_embeddings=False)
    vision.update(patch_size=16, spatial_merge_size=2, temporal_patch_size=2, hidden_act="gelu_pytorch_tanh")
    return text, vision


def build_model(out: Path, tiny: bool, layers: int) -> int:
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from fracdata.train.tiny_model import _processor, _train_tokenizer

    tok, vocab = _train_tokenizer()
    text, vision = _widths(tiny, layers)
    text.update(eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"])
    config = Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=vocab["<|image_pad|>"],
                           video_token_id=vocab["<|video_pad|>"], vision_start_token_id=vocab["<|vision_start|>"],
                           vision_end_token_id=vocab["<|vision_end|>"], tie_word_embeddings=False)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    _processor(tok).save_pretrained(out)
    print(f"wrote {out}: random Qwen3-VL, {n:,} params ({layers} text layers), {dtype} "
          f"in {time.time() - t0:.0f} s")
    del model
    return n


def build_dataset(out: Path, rows: int, pixels: int) -> None:
    import numpy as np
    from PIL import Image

    from fracdata.answer import render_answer, render_prompt
    from fracdata.taxonomy import load_taxonomy

    side = int(pixels ** 0.5)
    (out / "images").mkdir(parents=True, exist_ok=True)
    ids = load_taxonomy().ids
    rng = np.random.default_rng(0)
    data = []
    for i in range(rows):
        name = f"images/{i:05d}.png"
        if i < 16:  # 16 distinct noise images, reused: decoding cost is real, disk stays small
            Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(out / name)
        else:
            name = f"images/{i % 16:05d}.png"
        answer = render_answer([ids[i % len(ids)], ids[(i * 7) % len(ids)]])
        data.append({"messages": [{"role": "user", "content": render_prompt()},
                                  {"role": "assistant", "content": answer}], "images": [name]})
    (out / "full.json").write_text(json.dumps(data))
    entry = {"file_name": "full.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
             "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    (out / "dataset_info.json").write_text(json.dumps({"full": entry}))
    print(f"wrote {out}: {rows} rows, {side}x{side} images")


def write_recipes(work: Path, steps: int, batch: int, pixels: int) -> None:
    """The paper recipe's method settings, with evaluation off and a fixed number of steps."""
    import torch

    from fracdata.train import recipes

    _, base = recipes.resolve("qwen3vl_32b_lora_sft_ds3.yaml")
    for key in ("early_stopping_steps", "metric_for_best_model", "load_best_model_at_end", "val_size",
                "per_device_eval_batch_size", "eval_steps", "save_steps", "save_total_limit", "num_train_epochs"):
        base.pop(key)
    base.update(model_name_or_path=str(work / "model"), dataset_dir=str(work / "data"), dataset="full",
                image_max_pixels=pixels, max_steps=steps, per_device_train_batch_size=batch,
                gradient_accumulation_steps=1, eval_strategy="no", save_strategy="no", logging_steps=10,
                preprocessing_num_workers=8, plot_loss=False, bf16=torch.cuda.is_available(),
                overwrite_cache=True, warmup_steps=0)
    for name, ds in (("plain", False), ("zero3", True)):
        cfg = dict(base, output_dir=str(work / f"out_{name}"))
        if not ds:
            cfg.pop("deepspeed")
        typed = recipes.validate(cfg, f"gpu check {name}")
        (work / f"{name}.yaml").write_text(recipes.render(typed))
        print(f"wrote {work / name}.yaml")


def train(config_path: Path) -> None:
    """Run LlamaFactory in this process with a timing/memory callback; write <config>.json."""
    import os

    import torch
    import yaml
    from transformers import TrainerCallback

    from llamafactory.train.tuner import run_exp

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cfg = yaml.safe_load(config_path.read_text())
    t0 = time.perf_counter()
    run_exp(args=cfg, callbacks=[Clock()])
    wall = time.perf_counter() - t0
    if int(os.environ.get("RANK", "0")) != 0:
        return
    skip = min(5, len(times) - 2)  # warm-up steps left out of the steady rate
    steady = (len(times) - 1 - skip) / (times[-1] - times[skip]) if len(times) - 1 > skip else float("nan")
    result = {"steps": len(times), "batch": cfg["per_device_train_batch_size"], "steady_it_s": steady,
              "train_wall_s": times[-1] - times[0] if times else float("nan"), "total_wall_s": wall,
              "peak_alloc_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None,
              "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9 if torch.cuda.is_available() else None}
    config_path.with_suffix(".json").write_text(json.dumps(result, indent=2))


def report(work: Path) -> None:
    import torch

    from fracdata.train import token_budget

    meta = json.loads((work / "meta.json").read_text())
    b = token_budget.check({"dataset_dir": str(work / "data"), "dataset": "full", "cutoff_len": 10 ** 6,
                            "model_name_or_path": str(work / "model"), "image_max_pixels": meta["pixels"]})
    tokens = b.need  # every row has the same image size; texts differ by a few tokens
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    # LoRA on a frozen base: forward 2N + activation gradients 2N = 4N FLOPs per token
    # (gradient checkpointing recomputes the forward: 6N executed, 4N counted as useful)
    flops_per_sample = 4 * meta["params"] * tokens
    size = f"{meta['params'] / 1e9:.2f}B" if meta["params"] >= 1e9 else f"{meta['params'] / 1e6:.2f}M"
    print(f"\n{gpu}: random Qwen3-VL {size} params ({meta['layers']} text layers), "
          f"{meta['pixels']} px images, ~{tokens} tokens/sample, batch {meta['batch']}, {meta['steps']} steps")
    print("| launch | samples/s (steady) | tokens/s | MFU (4N/token) | peak alloc GB | train wall s |")
    print("|---|---|---|---|---|---|")
    for name in ("plain", "zero3"):
        f = work / f"{name}.json"
        if not f.is_file():
            print(f"| {name} | failed: no {f.name} (see its log above) | | | | |")
            continue
        r = json.loads(f.read_text())
        sps = r["steady_it_s"] * r["batch"]
        mfu = f"{100 * sps * flops_per_sample / (peak * 1e12):.1f}%" if peak else "n/a"
        mem = f"{r['peak_alloc_gb']:.1f}" if r["peak_alloc_gb"] is not None else "n/a (cpu)"
        print(f"| {name} | {sps:.2f} | {sps * tokens:,.0f} | {mfu} | {mem} | {r['train_wall_s']:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("work", type=Path)
    a.add_argument("--tiny", action="store_true")
    a.add_argument("--layers", type=int, default=8)
    a.add_argument("--steps", type=int, default=50)
    a.add_argument("--batch", type=int, default=4)
    a.add_argument("--pixels", type=int, default=768 * 768)
    sub.add_parser("train").add_argument("config", type=Path)
    sub.add_parser("report").add_argument("work", type=Path)
    args = p.parse_args()
    if args.cmd == "prepare":
        args.work.mkdir(parents=True, exist_ok=True)
        n = build_model(args.work / "model", args.tiny, args.layers)
        build_dataset(args.work / "data", args.steps * args.batch + 16, args.pixels)
        write_recipes(args.work, args.steps, args.batch, args.pixels)
        (args.work / "meta.json").write_text(json.dumps({"params": n, "layers": args.layers, "steps": args.steps,
                                                         "batch": args.batch, "pixels": args.pixels}))
    elif args.cmd == "train":
        train(args.config)
    else:
        report(args.work)


if __name__ == "__main__":
    main()

"""GPU check: the paper recipe as rendered vs the planned launch, at two text depths, on one card.

    python gpu_train_check.py prepare WORK [--dry-run] [--depths 4,8] [--steps 12] [--arms paper,planned]
    python gpu_train_check.py conv3d WORK [--dry-run]        # the vision patch embedding, fwd and bwd
    python gpu_train_check.py train WORK/paper_L4.yaml       # (under torchrun for DeepSpeed) -> .json
    python gpu_train_report.py WORK                          # the table, last

Arms, each at every depth, on the same card:
  paper    `fracdata recipes render qwen3vl_32b_lora_sft_ds3.yaml` as it is: ZeRO-3 under torchrun
           (1 process), 1 per device x 4 accumulation, gradient checkpointing (LlamaFactory's default)
  planned  what `fracdata train` plans for the real 32B model on this card (plan.py), applied to it
  nogc     (opt-in) the planned launch without checkpointing, at the per-device batch the planner
           says fits without it (half of it on an H200)
Only what a benchmark needs is changed: the model (random weights, Qwen3-VL-32B widths, text
depth cut), the data (768x768 noise images, taxonomy answers), max_steps, evaluation and saving off.

Why two depths: the model's fixed part (embeddings, lm_head, vision tower) is ~7% of the 32B
parameters but ~35% at 8 layers, so one cut-depth rate misleads. Seconds per sample is fitted as
a + b x depth from the two depths and read at 64 layers (linear in depth: every layer is alike).
MFU = useful FLOPs / (seconds x the card's dense bf16 peak), useful FLOPs from
fracdata.train.sizes.useful_flops: 4 x language-model matmul weights (no input embedding) per LM
token + 2 x vision matmul weights per patch (forward only: frozen); recompute is not counted.
--dry-run: toy widths on CPU, so CI runs every step of the script (figures then mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gpu_train_report import peak_tflops  # noqa: E402  (this folder is on sys.path for a script)


def _widths(dry: bool, layers: int) -> dict:
    """Qwen3-VL-32B's config values (fracdata.train.sizes.QWEN3VL_32B) with the text depth cut, or toy widths."""
    from fracdata.train.sizes import QWEN3VL_32B

    text, vision = dict(QWEN3VL_32B["text_config"]), dict(QWEN3VL_32B["vision_config"])
    if dry:
        text.update(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    vocab_size=1024)
        vision.update(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                      num_position_embeddings=256, deepstack_visual_indexes=[0])
    mrope = [4, 2, 2] if dry else [24, 20, 20]
    text.update(num_hidden_layers=layers, max_position_embeddings=262144, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": mrope,
                                 "mrope_interleaved": True})
    vision.update(hidden_act="gelu_pytorch_tanh")
    return {"text_config": text, "vision_config": vision}


def build_models(work: Path, dry: bool, depths: list[int]) -> None:
    """One random model at the deepest depth; shallower ones share its weight files (extra layers unused)."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from fracdata.train.tiny_model import _processor, _train_tokenizer

    tok, vocab = _train_tokenizer()
    deep = work / f"model_L{max(depths)}"
    w = _widths(dry, max(depths))
    w["text_config"].update(eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"])
    config = Qwen3VLConfig(**w, image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
                           vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
                           tie_word_embeddings=False)
    cuda = torch.cuda.is_available()
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device("cuda" if cuda else "cpu"):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16 if cuda else torch.float32)
    model.save_pretrained(deep)
    _processor(tok).save_pretrained(deep)
    print(f"wrote {deep}: random Qwen3-VL, {sum(p.numel() for p in model.parameters()):,} params in "
          f"{time.time() - t0:.0f} s", flush=True)
    del model
    for d in depths:
        if d == max(depths):
            continue
        folder = work / f"model_L{d}"
        folder.mkdir(exist_ok=True)
        for f in deep.iterdir():
            if f.name != "config.json":
                (folder / f.name).symlink_to(f)
        cfg = json.loads((deep / "config.json").read_text())
        cfg["text_config"]["num_hidden_layers"] = d
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))


def build_dataset(out: Path, rows: int, pixels: int) -> None:
    import numpy as np
    from PIL import Image

    from fracdata.answer import render_answer, render_prompt
    from fracdata.taxonomy import load_taxonomy

    side = int(pixels ** 0.5)
    (out / "images").mkdir(parents=True, exist_ok=True)
    ids = load_taxonomy().ids
    rng = np.random.default_rng(0)
    for i in range(16):  # 16 distinct noise images, reused: decoding cost is real, disk stays small
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out / f"images/{i:02d}.png")
    data = [{"messages": [{"role": "user", "content": render_prompt()},
                          {"role": "assistant", "content": render_answer([ids[i % len(ids)], ids[i * 7 % len(ids)]])}],
             "images": [f"images/{i % 16:02d}.png"]} for i in range(rows)]
    (out / "full.json").write_text(json.dumps(data))
    entry = {"file_name": "full.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
             "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    (out / "dataset_info.json").write_text(json.dumps({"full": entry}))
    print(f"wrote {out}: {rows} rows, {side}x{side} images")


def write_configs(work: Path, args, card_gb: float) -> dict:
    """WORK/<arm>_L<depth>.yaml; returns the plan made for the real 32B on this card."""
    import torch

    from fracdata.train import plan, recipes, sizes, token_budget

    _, paper = recipes.resolve("qwen3vl_32b_lora_sft_ds3.yaml")
    for key in ("eval_dataset", "early_stopping_steps", "metric_for_best_model", "load_best_model_at_end",
                "per_device_eval_batch_size", "eval_steps", "save_steps", "save_total_limit", "num_train_epochs"):
        paper.pop(key)
    paper.update(dataset_dir=str(work / "data"), max_steps=args.steps, eval_strategy="no", save_strategy="no",
                 logging_steps=max(args.steps // 2, 1), plot_loss=False, overwrite_cache=True,
                 preprocessing_num_workers=1 if args.dry_run else 8, dataloader_num_workers=0 if args.dry_run else 4,
                 bf16=torch.cuda.is_available(), image_max_pixels=args.pixels)
    budget = token_budget.check({**paper, "cutoff_len": 10 ** 6, "model_name_or_path": str(work / f"model_L{args.depths[0]}")})
    real = {**paper, "model_name_or_path": "Qwen/Qwen3-VL-32B-Instruct", "image_max_pixels": 589824, "bf16": True}
    s32 = sizes.sizes(sizes.QWEN3VL_32B, paper["lora_rank"])
    tokens = -(-budget.need // 8) * 8
    planned = plan.make_plan(real, plan.Hardware(1, 1, card_gb), s32, tokens, "the benchmark rows",
                             plan.effective_batch(real, None), recipes_root=recipes.RECIPES_ROOT)
    print(plan.describe(planned, s32, "Qwen/Qwen3-VL-32B-Instruct"))
    arms = {"paper": paper, "planned": plan.apply(paper, planned)}
    arms["fused"] = arms["planned"]  # the planned launch on a model view whose config asks for the fused patch embedding
    if "nogc" in args.arms:  # the largest per-device batch that fits the 32B without checkpointing
        nogc = next((pd for pd in (4, 2, 1) if plan.memory(s32, real, "none" if not planned.deepspeed else "zero3",
                                                            pd, tokens, False, 1)["total"] <= planned.usable_gb), 1)
        arms["nogc"] = {**arms["planned"], "disable_gradient_checkpointing": True,
                        "per_device_train_batch_size": nogc, "gradient_accumulation_steps": 4 // nogc}
    from fracdata.train import fusion, launch

    for arm in list(args.arms):
        if arm == "fused" and launch.zero_stage(arms["planned"]) == 3:
            # transformers cannot load the fused embedding under ZeRO-3 (docs/train.md): nothing to compare
            print("skipped arm fused: the planned launch is ZeRO-3, which keeps the Conv3d (docs/train.md)")
            args.arms.remove(arm)
            continue
        for d in args.depths:
            model = work / f"model_L{d}"  # its config.json names no fusion: the Conv3d as written
            if arm == "fused":  # what `fracdata train` does by default (fracdata/train/fusion.py)
                model = fusion.model_view(model, work / f"model_L{d}_fused", fused=True)
            cfg = dict(arms[arm], model_name_or_path=str(model), output_dir=str(work / f"out_{arm}_L{d}"))
            typed = recipes.validate(cfg, f"gpu check {arm} L{d}")
            (work / f"{arm}_L{d}.yaml").write_text(recipes.render(typed))
            print(f"wrote {work}/{arm}_L{d}.yaml: deepspeed {Path(cfg['deepspeed']).name if cfg.get('deepspeed') else 'none'}, "
                  f"{cfg['per_device_train_batch_size']} x {cfg['gradient_accumulation_steps']}, checkpointing "
                  f"{'off' if cfg.get('disable_gradient_checkpointing') else 'on'}")
    return {"plan": planned.as_json(), "lm_tokens": budget.need, "image_tokens": budget.image - 2}


def conv3d(work: Path, dry: bool) -> None:
    """Qwen3-VL's patch embedding (Conv3d 3x2x16x16 -> 1152, stride = kernel) against the same matmul."""
    import torch

    cuda = torch.cuda.is_available()
    dev, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    hidden, patches = (64, 512) if dry else (1152, 4 * 2304)  # 4 images of 768x768 = 4 x 48 x 48 patches
    conv = torch.nn.Conv3d(3, hidden, kernel_size=(2, 16, 16), stride=(2, 16, 16)).to(dev, dtype)
    x = torch.randn(patches, 3, 2, 16, 16, device=dev, dtype=dtype)  # as Qwen3VLVisionPatchEmbed views pixel rows
    w = conv.weight.detach().view(hidden, -1)

    def timed(fn, reps=3 if dry else 20):
        for _ in range(2 if dry else 5):
            fn()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / reps * 1e3

    def conv_bwd():
        conv(x).view(patches, hidden).sum().backward()

    def mm_bwd():
        wt = w.clone().requires_grad_()
        (x.view(patches, -1) @ wt.t()).sum().backward()

    with torch.no_grad():
        same = torch.allclose(conv(x).view(patches, hidden), x.view(patches, -1) @ w.t() + conv.bias,
                              atol=0.1 if cuda else 1e-4)
        fwd = {"conv3d": timed(lambda: conv(x)), "matmul": timed(lambda: x.view(patches, -1) @ w.t())}
    bwd = {"conv3d": timed(conv_bwd), "matmul": timed(mm_bwd)}
    result = {"torch": torch.__version__, "patches": patches, "same_output": same, "forward_ms": fwd,
              "forward_backward_ms": bwd}
    (work / "conv3d.json").write_text(json.dumps(result, indent=2))
    print(f"conv3d: forward {fwd['conv3d']:.2f} ms vs matmul {fwd['matmul']:.2f} ms; fwd+bwd {bwd['conv3d']:.2f} "
          f"vs {bwd['matmul']:.2f} ms (torch {torch.__version__}, {patches} patches, outputs equal: {same})")


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
    if int(os.environ.get("RANK", "0")) != 0:
        return
    skip = min(2, len(times) - 2)  # warm-up steps left out of the steady rate
    per_step = cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"] * int(os.environ.get("WORLD_SIZE", 1))
    steady = (len(times) - 1 - skip) / (times[-1] - times[skip]) if len(times) - 1 > skip else float("nan")
    result = {"steps": len(times), "samples_per_step": per_step, "steady_samples_s": steady * per_step,
              "total_wall_s": time.perf_counter() - t0,
              "peak_alloc_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None}
    config_path.with_suffix(".json").write_text(json.dumps(result, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("work", type=Path)
    a.add_argument("--dry-run", action="store_true", help="toy widths on CPU (CI)")
    a.add_argument("--depths", default="4,8", help="two text depths (default 4,8)")
    a.add_argument("--steps", type=int, default=12, help="optimizer steps per run (default 12; 2 warm-up)")
    a.add_argument("--pixels", type=int, default=768 * 768)
    a.add_argument("--arms", default="paper,planned,fused", help="paper,planned,fused[,nogc] (fused: the planned "
                   "launch with the fused patch embedding)")
    c = sub.add_parser("conv3d")
    c.add_argument("work", type=Path)
    c.add_argument("--dry-run", action="store_true")
    sub.add_parser("train").add_argument("config", type=Path)
    args = p.parse_args()
    if args.cmd == "prepare":
        import torch

        args.depths = sorted({int(d) for d in args.depths.split(",")})
        args.arms = [a for a in args.arms.split(",") if a]
        if len(args.depths) != 2 or not set(args.arms) <= {"paper", "planned", "fused", "nogc"}:
            raise SystemExit("error: --depths needs two depths, --arms a subset of paper,planned,fused,nogc")
        args.work.mkdir(parents=True, exist_ok=True)
        cuda = torch.cuda.is_available()
        card = torch.cuda.get_device_name(0) if cuda else "cpu (dry run)"
        card_gb = torch.cuda.get_device_properties(0).total_memory / 1e9 if cuda else 141.0  # dry run: plan an H200
        build_models(args.work, args.dry_run, args.depths)
        if args.dry_run and args.pixels == 768 * 768:
            args.pixels = 256 * 256  # Qwen3-VL's minimum, 64 image tokens: the dry run checks plumbing, not speed
        build_dataset(args.work / "data", args.steps * 4 + 16, args.pixels)
        meta = write_configs(args.work, args, card_gb)
        launch = {}
        for arm in args.arms:
            import yaml

            cfg = yaml.safe_load((args.work / f"{arm}_L{args.depths[0]}.yaml").read_text())
            ds = Path(cfg["deepspeed"]).name.replace("_config.json", "") if cfg.get("deepspeed") else "no DeepSpeed"
            launch[arm] = (f"{ds}, {cfg['per_device_train_batch_size']} x {cfg['gradient_accumulation_steps']}, "
                           f"checkpointing {'off' if cfg.get('disable_gradient_checkpointing') else 'on'}"
                           + (", fused patch embedding" if arm == "fused" else ""))
        peak, peak_card = peak_tflops(card, card_gb) if cuda else (None, None)  # by name and memory: SXM, NVL, PCIe
        full = _widths(args.dry_run, 64) if args.dry_run else None
        from fracdata.train.sizes import QWEN3VL_32B

        meta.update(depths=args.depths, arms=args.arms, steps=args.steps, card=f"{card} ({card_gb:.0f} GB)",
                    peak_tflops=peak, peak_card=peak_card, dry_run=args.dry_run, launch=launch,
                    full_config={"model_type": "qwen3_vl", "tie_word_embeddings": False, **full} if full else QWEN3VL_32B)
        (args.work / "meta.json").write_text(json.dumps(meta, indent=2))
    elif args.cmd == "conv3d":
        conv3d(args.work, args.dry_run)
    else:
        train(args.config)


if __name__ == "__main__":
    main()

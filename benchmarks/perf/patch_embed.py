"""Qwen3-VL's patch embedding: the Conv3d as written against transformers' fused Linear path.

    .venv/bin/python benchmarks/perf/patch_embed.py [--patches 2304] [--repeat 7] [--threads 1]
    .venv/bin/python benchmarks/perf/patch_embed.py --step MODEL_DIR [--rounds 3] [--repeat 7]

Times forward and forward+backward (the weight gradient: what a run with the vision tower
unfrozen pays, e.g. the demo's full fine-tune) of `Qwen3VLVisionPatchEmbed` (nn.Conv3d with
stride = kernel, 3 x 2 x 16 x 16 = 1,536 inputs per patch) and of the class transformers builds
for `fusion_config={"patch_embeddings": True}` (the same weights as one nn.Linear over the
flattened patch), in fp32 and bf16, at the 32B model's vision width (1,152) and the tiny demo
model's (64). 2,304 patches = one 768 x 768 image (48 x 48 patches of 16 px; a single image is
one temporal patch). Both modules get identical weights; the script checks their outputs agree
(fp32 within 1e-4, bf16 within 0.05 abs) before timing. Prints min and median over `--repeat`
runs, the conv/fused ratio, torch's version and threads, and the load average before and after:
the two are timed in alternation in one process, so the ratio holds on a busy machine where the
absolute times do not.

`--step MODEL_DIR` times what the demo pays instead: one whole training step (forward + backward
of every weight, `model.train()`) of that model, e.g. the tiny Qwen3-VL of `fracdata tiny-model`,
on the demo's batch (32 images of 128 x 128 px, 2,048 patch rows, the training prompt), loaded
fused and unfused, each in its own process (transformers applies the fusion process-wide),
alternating for `--rounds` rounds; prints each process's best step and the patch embedding's own
forward+backward inside it.

Reported on pytorch issue 174051 for torch 2.9 on GPUs (10-20x); this measures the CPU here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def modules(width: int, dtype):
    import torch
    from transformers.fusion_mapping import PatchEmbeddingsFusionSpec
    from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionPatchEmbed

    cfg = Qwen3VLVisionConfig(hidden_size=width, patch_size=16, temporal_patch_size=2, in_channels=3)
    torch.manual_seed(0)
    conv = Qwen3VLVisionPatchEmbed(cfg).to(dtype)
    fused = PatchEmbeddingsFusionSpec().make_fused_class(Qwen3VLVisionPatchEmbed)(cfg).to(dtype)
    with torch.no_grad():  # transformers' Conv3dToLinear: (out, in, t, h, w) -> (out, in*t*h*w)
        fused.linear_proj.weight.copy_(conv.proj.weight.reshape(width, -1))
        fused.linear_proj.bias.copy_(conv.proj.bias)
    return conv, fused


def timed(module, x, backward: bool) -> float:
    t0 = time.perf_counter()
    if backward:
        module.zero_grad(set_to_none=True)
        module(x).float().sum().backward()
    else:
        import torch

        with torch.no_grad():
            module(x)
    return time.perf_counter() - t0


STEP = r"""
import json, sys, time
import numpy as np, torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
from fracdata.answer import render_prompt
from fracdata.train.qwen import chat_text, lf_preprocess

model_dir, fused, repeat, threads = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
m = AutoModelForImageTextToText.from_pretrained(model_dir, fusion_config={"patch_embeddings": True} if fused else {})
proc = AutoProcessor.from_pretrained(model_dir)
rng = np.random.default_rng(0)
ims = [lf_preprocess(Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)), 16384, 1024) for _ in range(32)]
enc = proc(text=[chat_text(render_prompt())] * 32, images=ims, return_tensors="pt", padding=True)
m.train()
steps, embed = [], []
for _ in range(repeat + 1):  # the first step warms up and is dropped
    t0 = time.perf_counter()
    m(**enc, labels=enc["input_ids"]).loss.backward()
    steps.append(time.perf_counter() - t0)
    m.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    m.model.visual.patch_embed(enc["pixel_values"]).sum().backward()
    embed.append(time.perf_counter() - t0)
    m.zero_grad(set_to_none=True)
print(json.dumps({"class": type(m.model.visual.patch_embed).__name__, "rows": int(enc["pixel_values"].shape[0]),
                  "step": min(steps[1:]), "embed": min(embed[1:])}))
"""


def step_rounds(model_dir: str, rounds: int, repeat: int, threads: int) -> None:
    import json
    import subprocess
    import sys

    best = {"conv3d": [], "fused": []}
    for r in range(1, rounds + 1):
        for name, flag in (("conv3d", "0"), ("fused", "1")):
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-c", STEP, model_dir, flag, str(repeat), str(threads)],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            res = json.loads(out)
            best[name].append(res["step"])
            print(f"round {r} {name:6s} ({res['class']}, {res['rows']:,} patch rows): best step {res['step'] * 1e3:7.1f} ms, "
                  f"patch embedding fwd+bwd {res['embed'] * 1e3:6.1f} ms of it; load {load:.2f}")
    c, f = min(best["conv3d"]), min(best["fused"])
    print(f"best of all rounds: conv3d {c * 1e3:.1f} ms, fused {f * 1e3:.1f} ms per training step: fused/conv3d {f / c:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patches", type=int, default=2304, help="patches per call (2,304 = one 768 x 768 image)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: stable figures on a shared machine)")
    ap.add_argument("--step", metavar="MODEL_DIR", help="time whole training steps of this model instead (see above)")
    ap.add_argument("--rounds", type=int, default=3, help="--step: fused/unfused process pairs")
    args = ap.parse_args()
    if args.step:
        load0 = os.getloadavg()
        print(f"training steps of {args.step}, {args.threads} thread(s), best of {args.repeat} per process; "
              f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
        step_rounds(args.step, args.rounds, args.repeat, args.threads)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.patches:,} patches per call, "
          f"best and median of {args.repeat}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"{'width':>5s} {'dtype':9s} {'pass':16s} {'conv3d ms':>16s} {'fused ms':>16s} {'conv/fused':>10s}")
    for width in (1152, 64):
        for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 0.05)):
            conv, fused = modules(width, dtype)
            x = torch.randn(args.patches, 3 * 2 * 16 * 16).to(dtype)
            with torch.no_grad():
                diff = (conv(x).float() - fused(x).float()).abs().max().item()
            assert diff <= tol, f"fused output differs by {diff} (> {tol})"
            for backward in (False, True):
                times = {"conv": [], "fused": []}
                for _ in range(args.repeat + 1):  # the first round warms up and is dropped
                    for name, m in (("conv", conv), ("fused", fused)):
                        times[name].append(timed(m, x, backward))
                c, f = times["conv"][1:], times["fused"][1:]
                label = "forward+backward" if backward else "forward"
                print(f"{width:5d} {str(dtype).removeprefix('torch.'):9s} {label:16s} "
                      f"{min(c) * 1e3:7.1f} / {statistics.median(c) * 1e3:7.1f} "
                      f"{min(f) * 1e3:7.1f} / {statistics.median(f) * 1e3:7.1f} {min(c) / min(f):9.1f}x")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What every feature's probability costs per image: greedy generation alone against generation
plus the 53 feature scores (fracdata/inference/feature_probs.py), on a local checkpoint.

    .venv/bin/python benchmarks/perf/feature_probs.py [--model DIR] [--images 40] [--batch 8]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--check]

Without --model it builds the tiny random Qwen3-VL (`fracdata tiny-model`, 9,216-pixel minimum as
in the demo), whose answers are noise up to the token limit: give the demo's fine-tuned
checkpoint (`--model runs/demo/full`) for real answers (2-4 features, ~7 tokens). Images are
96-128 px, the synthetic fractographs' sizes. Interleaves the two modes (generate only; generate
with `score_features`, as fracbench, calibrate and analyze run) over the same images, repeats,
and prints the best seconds per image of each, the added seconds, their ratio and the load
average (the machine is shared).
`--check` first compares the cached, batched scores with a plain forward pass over each full
text (the test's check, here on any device and dtype) and exits 1 beyond the tolerance.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint folder (default: build the tiny model)")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8, help="generation batch (the tiny-ft entry's batch_size)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--check", action="store_true", help="compare with a plain forward pass first")
    args = ap.parse_args()
    import numpy as np
    from PIL import Image

    from fracdata.answer import parse_answer, render_prompt
    from fracdata.inference.feature_probs import feature_logprobs
    from fracdata.inference.local import LocalModel
    from fracdata.taxonomy import load_taxonomy

    tax = load_taxonomy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else None
        if path is None:
            from fracdata.train.tiny_model import build_tiny_model

            path = build_tiny_model(Path(tmp) / "tiny", seed=0)
        lm = LocalModel(Path(path), device=args.device, dtype=args.dtype, image_min_pixels=9216, max_new_tokens=32,
                        batch_size=args.batch)
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 256, (int(rng.integers(96, 129)), int(rng.integers(96, 129))),
                                               dtype=np.uint8)) for _ in range(args.images)]
        listed = [list(rng.choice(tax.ids, size=int(rng.integers(2, 5)), replace=False)) for _ in images]
        prompt = render_prompt()
        if args.check and not check(lm, images[:3], listed[:3], prompt, tax, 2e-3 if args.dtype == "float32" else 0.25):
            return 1
        lm.generate(images[:2], prompt)  # warm-up
        lm.score_features(tax).generate(images[:2], prompt)
        gen, both = [], []
        for _ in range(args.repeats):  # the two modes interleaved: load changes hit both alike
            t0 = time.perf_counter()
            answers = []
            for k in range(0, len(images), args.batch):
                answers += lm.score_features(None).generate(images[k:k + args.batch], prompt)
            gen.append((time.perf_counter() - t0) / len(images))
            t0 = time.perf_counter()
            for k in range(0, len(images), args.batch):  # what fracbench, calibrate and analyze run
                lm.score_features(tax).generate(images[k:k + args.batch], prompt)
            if args.device == "cuda":
                import torch

                torch.cuda.synchronize()
            both.append((time.perf_counter() - t0) / len(images))
        g, b = min(gen), min(both)
        tokens = np.mean([a.usage["completion_tokens"] for a in answers])
        unparsed = sum(parse_answer(a.raw, tax).status == "unparsed" for a in answers)
        print(f"model {path} ({lm.describe()}), {len(images)} images of 96-128 px, batch {args.batch}, "
              f"{tokens:.1f} generated tokens per answer ({unparsed} unparsed), best of {args.repeats}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        print(f"generate only:            {g:.4f} s/image")
        print(f"generate + 53 scores:     {b:.4f} s/image")
        print(f"added by the scores:      {b - g:.4f} s/image ({b / g:.2f}x generation alone)")
        print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    return 0


def check(lm, images, listed, prompt, tax, tol: float) -> bool:
    """Cached, batched scores against a plain forward pass over each full text (4 features an image)."""
    import torch

    from fracdata.inference.feature_probs import end_tokens, feature_logprobs, slot_texts
    from fracdata.train.qwen import chat_text, lf_preprocess

    ends = end_tokens(lm.processor.tokenizer, tax, lm.eos)
    worst = 0.0
    for im, lab in zip(images, listed):
        got = feature_logprobs(lm, im, prompt, lab, tax)
        pixels = lf_preprocess(im, *lm.pixels)
        for f in [tax.ids[0], *lab[:2], tax.ids[-1]]:
            prefix, cont = slot_texts(lab, tax)[f]
            full = lm.processor(text=[chat_text(prompt) + prefix + cont], images=[pixels], return_tensors="pt").to(lm.device)
            head = lm.processor(text=[chat_text(prompt) + prefix], images=[pixels], return_tensors="pt")
            n0, ids = head["input_ids"].shape[1], full["input_ids"][0]
            with torch.inference_mode():
                lp = torch.log_softmax(lm.model(**full).logits[0].float(), -1)
            want = sum(float(lp[t - 1, ids[t]]) for t in range(n0, len(ids))) + float(torch.logsumexp(lp[-1, ends], 0))
            worst = max(worst, abs(got[f] - want))
    print(f"check: cached batched scores vs a plain forward pass, {len(images)} images x 4 features: max |diff| "
          f"{worst:.2e} nats (tolerance {tol:g}): {'ok' if worst <= tol else 'FAILED'}")
    return worst <= tol


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())

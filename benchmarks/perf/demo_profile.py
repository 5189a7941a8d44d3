"""Where `make demo`'s training time goes: s/step and start-up for variants of the demo recipe.

    .venv/bin/python benchmarks/perf/demo_profile.py --root /tmp/demo-prof [--steps 10 40] [--repeat 1]

Builds once under ROOT (synth, build, and the tiny model at two processor minimums), then runs
the real `fracdata train` per variant at two step counts, interleaved (A B C A B C ...) so that
a change of load on a shared machine hits every variant alike, each from a fresh tokenisation
(`overwrite_cache`, as a fresh demo run has no datasets cache). Per variant it prints wall
start-up (wall minus LlamaFactory's train_runtime: imports, tokenising the dataset, model load)
and wall s/step (train_runtime / steps) of the longer run, and CPU seconds (all threads, user +
system) split the same way from the two runs: per step = difference / extra steps, start-up =
the rest. On a loaded machine CPU seconds are closer to what a quiet one takes than wall
seconds are. Every figure also as a ratio against the first variant measured in the same run,
with the load average. Also the processor alone: one batch of 32
demo images at Qwen3-VL's 65,536 px minimum (each upscaled to 256x256 = 64 visual tokens) and
at 9,216 px (96-128 px images keep 9-16 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fracdata.demo.study import RECIPE

MODELS = {"tiny-qwen": 65536, "tiny-mid": 36864, "tiny-native": 9216}  # folder: processor min_pixels
VARIANTS = {  # name: (model folder, env, recipe overrides)
    "64 tok, 2 threads": ("tiny-qwen", {"OMP_NUM_THREADS": "2"}, []),
    "64 tok, 1 thread": ("tiny-qwen", {"OMP_NUM_THREADS": "1"}, []),
    "25-36 tok, 1 thread": ("tiny-mid", {"OMP_NUM_THREADS": "1"}, []),
    "9-16 tok, 2 threads": ("tiny-native", {"OMP_NUM_THREADS": "2"}, []),
    "9-16 tok, 1 thread": ("tiny-native", {"OMP_NUM_THREADS": "1"}, []),
    "9-16 tok, 1 thread, batch 16": ("tiny-native", {"OMP_NUM_THREADS": "1"}, ["per_device_train_batch_size=16"]),
    "9-16 tok, 1 thread, batch 64": ("tiny-native", {"OMP_NUM_THREADS": "1"}, ["per_device_train_batch_size=64"]),
    "9-16 tok, 1 thread, 1 loader": ("tiny-native", {"OMP_NUM_THREADS": "1"}, ["dataloader_num_workers=1"]),
}


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fd(*argv: str, env=None, cpu: list | None = None) -> float:
    t, c = time.perf_counter(), cpu_children()
    subprocess.run([sys.executable, "-m", "fracdata", *argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    if cpu is not None:
        cpu.append(cpu_children() - c)
    return time.perf_counter() - t


def prepare(root: Path, n: int) -> None:
    synth, data = root / "synth", root / "data"
    if not (data / "dataset_info.json").is_file():
        print(f"synth {fd('synth', '--out', str(synth), '--n', str(n)):.1f} s; ", end="", flush=True)
        print(f"build {fd('build', '--manifest', str(synth / 'manifest.jsonl'), '--labels', str(synth / 'labels.jsonl'), '--manual', str(synth / 'manual'), '--gold', str(synth / 'gold.jsonl'), '--out', str(data)):.1f} s ({load()})")
    for name, px in MODELS.items():
        if not (root / name / "config.json").is_file():
            fd("tiny-model", str(root / name), "--min-pixels", str(px))


def processor_batch(root: Path) -> None:
    from PIL import Image
    from transformers import AutoProcessor

    images = [Image.open(p).convert("RGB") for p in sorted((root / "synth" / "images").glob("*.png"))[:32]]
    for name in MODELS:
        proc = AutoProcessor.from_pretrained(root / name).image_processor
        proc(images=images, return_tensors="pt")  # warm-up
        t, c = time.perf_counter(), time.process_time()
        for _ in range(5):
            out = proc(images=images, return_tensors="pt")
        tokens = int(out["image_grid_thw"].prod(1).sum()) // 4
        print(f"  processor ({type(proc).__name__}), 32 images, {name:12s}: {(time.perf_counter() - t) / 5 * 1000:6.1f} ms "
              f"wall, {(time.process_time() - c) / 5 * 1000:6.1f} ms CPU per batch, {tokens / 32:.1f} visual tokens per image")


def train(root: Path, variant: str, steps: int) -> tuple[float, float, float]:
    model, env, sets = VARIANTS[variant]
    out = root / "runs" / variant.replace(" ", "").replace(",", "_")
    shutil.rmtree(out, ignore_errors=True)
    argv = ["train", str(RECIPE), "--model", str(root / model), "--dataset-dir", str(root / "data"),
            "--output-dir", str(out), "--set", f"max_steps={steps}", "--set", "logging_steps=10",
            "--set", "overwrite_cache=true"]
    for s in sets:
        argv += ["--set", s]
    cpu: list[float] = []
    wall = fd(*argv, env=env, cpu=cpu)
    runtime = json.loads((out / "train_results.json").read_text())["train_runtime"]
    return wall - runtime, runtime / steps, cpu[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--n", type=int, default=3000, help="synthetic training images (default 3000, the demo's)")
    ap.add_argument("--steps", type=int, nargs=2, default=[10, 40], metavar=("SHORT", "LONG"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, {load()}")
    prepare(args.root, args.n)
    processor_batch(args.root)
    short, long = args.steps
    got: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in args.variants}
    for r in range(args.repeat):
        for v in args.variants:
            _, _, cpu_short = train(args.root, v, short)
            up, step, cpu_long = train(args.root, v, long)
            cpu_step = (cpu_long - cpu_short) / (long - short)
            got[v].append((up, step, cpu_long - long * cpu_step, cpu_step))
            print(f"  round {r + 1} {v:30s} wall: start-up {up:6.1f} s, {step:.3f} s/step; CPU: start-up "
                  f"{got[v][-1][2]:6.1f} s, {cpu_step:.3f} s/step ({load()})", flush=True)
    base = args.variants[0]
    b = [min(x[k] for x in got[base]) for k in range(4)]
    print(f"\nbest of {args.repeat} per variant; ratio = variant / '{base}' ({load()})")
    print(f"  {'variant':30s} {'wall start-up s':>15s} {'ratio':>6s} {'wall s/step':>11s} {'ratio':>6s} "
          f"{'CPU start-up s':>14s} {'ratio':>6s} {'CPU s/step':>10s} {'ratio':>6s}")
    for v in args.variants:
        x = [min(y[k] for y in got[v]) for k in range(4)]
        print(f"  {v:30s} {x[0]:15.1f} {x[0] / b[0]:6.2f} {x[1]:11.3f} {x[1] / b[1]:6.2f} "
              f"{x[2]:14.1f} {x[2] / b[2]:6.2f} {x[3]:10.3f} {x[3] / b[3]:6.2f}")

if __name__ == "__main__":
    main()

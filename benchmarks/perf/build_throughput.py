"""Builder throughput against a bare PIL loop, on the same 500 synthetic images.

    .venv/bin/python benchmarks/perf/build_throughput.py [--n 500] [--workers 2] [--side 0] [--repeat 3]

Prints images/s of `fracdata build` (whole build: read, decode, normalise, pixel id, 8 phashes,
gold check with keypoints, dedup, split, 3 rotations, PNG encodes, JSON) and of a bare single-process PIL loop
doing decode + 4 orientations (0/90/180/270) + PNG encode of each, and builder/bare. Goal >= 0.8
on 2 cores. Both encode with the same settings (fracdata.images.PNG_SAVE). `--side N` re-saves
the synthetic images upscaled to N x N first (0 = keep the generator's 96-128 px).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare_loop(paths: list[Path]) -> float:
    from PIL import Image

    from fracdata.images import PNG_SAVE

    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
            for op in (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270):
                im2 = im if op is None else im.transpose(op)
                im2.save(io.BytesIO(), **PNG_SAVE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--side", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from PIL import Image

    from fracdata.dataset.config import BuildConfig, Inputs
    from fracdata.dataset.pipeline import build
    from fracdata.images import image_id
    from fracdata.synth.corpus import generate

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "synth"
        generate(src, seed=0, n=args.n, n_gold=20, n_manual=0)
        if args.side:  # bigger images, same content: rewrite files and ids
            recs = [json.loads(x) for x in (src / "manifest.jsonl").read_text().splitlines()]
            labels = {json.loads(x)["id"]: json.loads(x) for x in (src / "labels.jsonl").read_text().splitlines()}
            for r in recs:
                p = src / r["image"]
                Image.open(p).resize((args.side, args.side), Image.Resampling.BICUBIC).save(p)
                new = image_id(p)  # ids are the pixels' hash
                labels[r["id"]]["id"], r["id"] = new, new
            (src / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
            (src / "labels.jsonl").write_text("".join(json.dumps(v) + "\n" for v in labels.values()))
        paths = sorted((src / "images").glob("*.png"))
        bare_loop(paths[:20])  # warm the page cache and PIL's plugins for both contenders
        inputs = Inputs(src / "manifest.jsonl", [src / "labels.jsonl"], None, [src / "gold.jsonl"])
        load0 = os.getloadavg()[0]
        bare, built, cpu_bare, cpu_built = [], [], [], []
        for _ in range(args.repeat):  # interleaved, best of N: a shared machine's noise hits both alike
            c0 = cpu_seconds()
            bare.append(bare_loop(paths))
            c1 = cpu_seconds()
            t0 = time.perf_counter()
            build(inputs, Path(tmp) / "out", BuildConfig(), workers=args.workers, force=True, log=lambda s: None)
            built.append(time.perf_counter() - t0)
            cpu_bare.append(c1 - c0)
            cpu_built.append(cpu_seconds() - c1)
        size = Image.open(paths[0]).size
    b_ips, p_ips = len(paths) / min(built), len(paths) / min(bare)
    print(f"images: {len(paths)} synthetic, {size[0]}x{size[1]} px and similar; builder workers: {args.workers}; "
          f"best of {args.repeat}; load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"builder   {min(built):7.2f} s  {b_ips:8.1f} images/s  (whole build; 4 PNGs per training image)"
          f"  runs: {', '.join(f'{t:.2f}' for t in built)}")
    print(f"bare PIL  {min(bare):7.2f} s  {p_ips:8.1f} images/s  (1 process: decode + 4 orientations + PNG encode)"
          f"  runs: {', '.join(f'{t:.2f}' for t in bare)}")
    print(f"ratio builder/bare: {b_ips / p_ips:.2f}  (goal >= 0.8)")
    # CPU seconds (user + system, all processes): wall minus these is time spent waiting, mostly
    # on the disk for the builder's 4 PNG files per image (the bare loop writes nothing).
    print(f"cpu seconds: builder {min(cpu_built):.2f} (all workers), bare {min(cpu_bare):.2f}")


if __name__ == "__main__":
    main()

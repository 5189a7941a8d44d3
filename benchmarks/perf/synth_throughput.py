"""Throughput of `fracdata synth`: prints images/s for the default corpus and ms per texture.

    .venv/bin/python benchmarks/perf/synth_throughput.py [--n 3000] [--n-gold 200] [--n-manual 60]

One process, one core (numpy's FFTs here are single-threaded). CPU seconds are printed beside
wall seconds because on a shared machine the wall clock also counts other people's work.
Goal: the default 3,000 + 200 + 60 images well under a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fracdata.synth.corpus import COMMON, PAIRS, RARE, generate
from fracdata.synth.textures import render


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--n-gold", type=int, default=200)
    ap.add_argument("--n-manual", type=int, default=60)
    args = ap.parse_args()

    style = {"contrast": 1.0, "brightness": 0.0, "blur": 0.5, "noise": 0.03}
    print("render only, 128x128 px, mean of 50 images:")
    for feats in [(f,) for f in (*COMMON, RARE)] + list(PAIRS):
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        for _ in range(50):
            render(list(feats), rng, 128, 128, rng.uniform(0, 2 * np.pi), style)
        print(f"  {' + '.join(feats):40s} {(time.perf_counter() - t) / 50 * 1000:6.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        s = generate(Path(tmp) / "synth", seed=0, n=args.n, n_gold=args.n_gold, n_manual=args.n_manual)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    total = s["counts"]["manifest"] + s["counts"]["manual"] + s["counts"]["gold"]
    print(f"generate: {total:,} images (PNG written, records, synth.json) in {wall:.1f} s wall, {cpu:.1f} s CPU: "
          f"{total / wall:,.0f} images/s wall, {total / cpu:,.0f} images/s per CPU second")


if __name__ == "__main__":
    main()

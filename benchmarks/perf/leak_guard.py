"""The crop-proof gold guard (fracdata/dataset/overlap.py): false positives, recall and cost.

    .venv/bin/python benchmarks/perf/leak_guard.py [--synth DIR] [--big 300] [--recall 30] [--timing 60]

1. False positives on the synthetic corpus's distinct images: every training (manifest +
   manual) image of `fracdata synth` (DIR, or a fresh default corpus: 3,060 images) against all
   its 200 gold images, as the builder checks them.
2. False positives at SEM-like size: `--big` distinct 512x384 renders of the synthetic textures
   against 100 others as gold.
3. Recall: crops of 100 gold renders (quarter, 80%, tile 1/4, scaled crops, rotated and mirrored
   crops, JPEG), looked up as training images, and the reverse (crops as gold, parents as training).
4. Cost: keypoints + lookup per training image against a 100-image gold index, beside the
   builder's own per-image work (decode, normalise, 8 phashes, 4 PNG encodes) on the same images,
   and extrapolated to 13,000 training x 100 gold images. Prints the load average with it.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def render(i: int, h: int = 384, w: int = 512):
    import numpy as np
    from PIL import Image

    from fracdata.synth.textures import MATRIX_DRAW, render as draw

    kinds = list(MATRIX_DRAW)
    rng = np.random.default_rng(10_000 + i)
    style = {"contrast": rng.uniform(0.7, 1.3), "brightness": rng.uniform(-0.08, 0.08),
             "blur": rng.uniform(0, 1), "noise": rng.uniform(0.01, 0.05)}
    return Image.fromarray(draw([kinds[i % len(kinds)]], rng, h, w, rng.uniform(0, 2 * np.pi), style))


def jpeg(im, q: int = 75):
    from PIL import Image

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return Image.open(buf).convert("L")


def crops():
    from PIL import Image

    T = Image.Transpose
    return {  # for a 512 x 384 image
        "quarter crop": lambda im: im.crop((256, 96, 512, 288)),
        "80% crop": lambda im: im.crop((37, 20, 37 + 409, 20 + 307)),
        "tile 1/4": lambda im: im.crop((0, 0, 256, 192)),
        "tile 1/9": lambda im: im.crop((0, 128, 170, 256)),
        "crop scaled x0.6": lambda im: im.crop((100, 50, 450, 300)).resize((210, 150), Image.Resampling.LANCZOS),
        "crop scaled x1.7 + JPEG": lambda im: jpeg(im.crop((200, 100, 400, 250)).resize((340, 255), Image.Resampling.LANCZOS)),
        "crop rotated 90": lambda im: im.crop((0, 0, 300, 200)).transpose(T.ROTATE_90),
        "mirrored crop": lambda im: im.transpose(T.FLIP_LEFT_RIGHT).crop((0, 0, 350, 250)),
    }


def index_of(images: dict):
    from fracdata.dataset import overlap

    return overlap.GoldIndex({k: overlap.gold_keypoints(im) for k, im in images.items()})


def false_positives(train: dict, gold: dict) -> tuple[int, int, int]:
    """(pairs flagged, pairs checked, most inliers seen) for distinct training and gold images."""
    from fracdata.dataset import overlap

    idx = index_of(gold)
    flagged = 0
    for im in train.values():
        flagged += len(idx.query(overlap.keypoints(im, overlap.N_TRAIN)))
    return flagged, len(train) * len(gold), overlap.MIN_INLIERS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", type=Path, help="a `fracdata synth` folder (default: generate one)")
    ap.add_argument("--big", type=int, default=300, help="distinct 512x384 renders as training (vs 100 gold)")
    ap.add_argument("--recall", type=int, default=30, help="gold renders to crop for the recall table")
    ap.add_argument("--timing", type=int, default=60, help="images for the cost comparison")
    args = ap.parse_args()
    from fracdata.dataset import overlap
    from fracdata.dataset.decode import dihedral_hashes
    from fracdata.images import encode_png, load_normalised, open_normalised
    from fracdata.records import GoldRecord, ManifestRecord, read_jsonl

    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
    print(f"parameters: {overlap.N_TRAIN} keypoints per training image, {overlap.N_GOLD} per gold image and mirror, "
          f"match <= {overlap.MAX_BITS} of 256 bits, verdict >= {overlap.MIN_INLIERS} agreeing points")

    # 1. the synthetic corpus
    with tempfile.TemporaryDirectory() as tmp:
        synth = args.synth
        if synth is None:
            from fracdata.synth.corpus import generate

            synth = Path(tmp) / "synth"
            generate(synth)
        train, gold = {}, {}
        for man in (synth / "manifest.jsonl", synth / "manual" / "manifest.jsonl"):
            for _, rec in read_jsonl(man, ManifestRecord, "perf"):
                train[rec.id] = open_normalised(man.parent / rec.image)
        for _, rec in read_jsonl(synth / "gold.jsonl", GoldRecord, "perf"):
            gold[rec.id] = open_normalised(synth / rec.image)
        t0 = time.perf_counter()
        flagged, pairs, _ = false_positives(train, gold)
        dt = time.perf_counter() - t0
        print(f"synthetic corpus: {len(train)} training x {len(gold)} gold images = {pairs:,} distinct pairs, "
              f"{flagged} flagged (false-positive rate {flagged / pairs:.2e}; {dt:.0f} s)")

    # 2. distinct SEM-sized renders
    gold_big = {f"g{i}": render(i) for i in range(100)}
    train_big = {f"t{i}": render(5_000 + i) for i in range(args.big)}
    flagged, pairs, _ = false_positives(train_big, gold_big)
    print(f"512x384 renders: {len(train_big)} training x {len(gold_big)} gold = {pairs:,} distinct pairs, "
          f"{flagged} flagged (false-positive rate {flagged / pairs:.2e})")

    # 3. recall, both ways round
    idx = index_of(gold_big)
    print(f"recall over {args.recall} gold renders (found / tried): training image = crop of gold | gold = crop of training")
    for name, cut in crops().items():
        hit = sum(f"g{i}" in {o.gold for o in idx.query(overlap.keypoints(cut(gold_big[f'g{i}']), overlap.N_TRAIN))}
                  for i in range(args.recall))
        rev = index_of({f"c{i}": cut(gold_big[f"g{i}"]) for i in range(args.recall)})
        back = sum(f"c{i}" in {o.gold for o in rev.query(overlap.keypoints(gold_big[f"g{i}"], overlap.N_TRAIN))}
                   for i in range(args.recall))
        print(f"  {name:24s} {hit:3d}/{args.recall} | {back:3d}/{args.recall}")

    # 4. cost per training image, beside the builder's own work on the same image
    for side in ((512, 384), (1024, 768)):
        ims = [render(20_000 + i, side[1], side[0]) for i in range(args.timing)]
        data = [encode_png(im) for im in ims]
        t0 = time.process_time()
        for d in data:
            im = load_normalised(d)
            dihedral_hashes(im)
            for op in (None, 2, 3, 4):
                encode_png(im if op is None else im.transpose(op))
        base = (time.process_time() - t0) / len(data)
        t0 = time.process_time()
        for d in data:
            idx.query(overlap.keypoints(load_normalised(d), overlap.N_TRAIN))
        guard = (time.process_time() - t0) / len(data)
        print(f"cost at {side[0]}x{side[1]}: builder's own work {base * 1e3:.0f} ms/image, guard {guard * 1e3:.0f} ms/image "
              f"(ratio {guard / base:.2f}); 13,000 x 100 gold: {13_000 * guard / 60:.1f} CPU-min "
              f"(~{13_000 * guard / 120:.1f} min on 2 cores)")
    t0 = time.process_time()
    index_of(gold_big)
    print(f"gold index of 100 images: {time.process_time() - t0:.1f} CPU-s; load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

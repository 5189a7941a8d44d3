"""The gold guard on the images users have (issue 22): false positives, recall per transform, cost.

    .venv/bin/python benchmarks/perf/leak_guard.py [--fp-train 1000] [--fp-gold 1000] [--recall 30]
                                                   [--recall-large 10] [--workers 2]

All images are synthetic (fracdata.synth.pairs), so every figure printed is a figure on synthetic images.
1. False positives, the hardest case: --fp-train x --fp-gold distinct fields (96-128 px, the demo's
   size; all seven textures), every one carrying the same data bar (one microscope, one magnification
   text, one width), the same scale bar and the same '(a)' in the same place. Prints the pairs looked
   at, how many reached the vote threshold (stage 1), the pre-check (verified in full), and flagged.
2. Recall per transform (crop 60% enlarged, tile 1/4, tile 1/9, zoom x2, crop rotated 90, crop + JPEG),
   both ways round (gold = the bigger image / gold = the derived one), every image with its own data
   bar, letter and an arrow, no source.parent; with 100 and with 1,000 gold images indexed (the others
   distinct fields): the same found / tried, pair for pair. At 128 px (parents up to 384 px) and 256 px
   (parents up to 768 px).
3. Cost per training image (keypoints + lookup) against 100 and 1,000 gold images.
Prints the load average at start and end; times are CPU seconds of this process and its workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

_GOLD = None  # the worker's GoldSet (inherited through fork)


def cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _gold_views(job):
    from PIL import Image

    from fracdata.dataset import overlap

    a, scales = job
    return overlap.gold_keypoints(Image.fromarray(a), overlap.gold_factors(a.shape[::-1], scales))


def _init(gold):
    global _GOLD
    _GOLD = gold


def _query(a):
    from PIL import Image

    from fracdata.dataset import lookup, overlap

    im = Image.fromarray(a)
    scale = overlap.work_factor(im.size)
    kp = overlap.keypoints(im, overlap.N_TRAIN, scale=scale)
    stats: dict = {}
    found = _GOLD.query(kp, lookup.probe_set(kp), scale, stats)
    return [o.gold for o in found], stats


def views(images: dict, scales, workers: int) -> dict:
    with ProcessPoolExecutor(workers) as ex:
        return dict(zip(images, ex.map(_gold_views, [(a, scales) for a in images.values()], chunksize=8), strict=True))


def query_all(gold_views: dict, train: list, workers: int) -> list:
    from fracdata.dataset.lookup import GoldSet

    gs = GoldSet(gold_views)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(gs,)) as ex:
        return list(ex.map(_query, train, chunksize=8))


def false_positives(n_train: int, n_gold: int, workers: int) -> None:
    from fracdata.synth import pairs

    t0, c0 = time.perf_counter(), cpu()
    gold = {}
    for side in (96, 128):  # half at each demo size: every pair of one width shares its strip exactly
        gold.update({f"g{side}-{k}": a for k, a in enumerate(pairs.distinct(n_gold // 2, (side, side), seed=1))})
    train = [a for side in (96, 128) for a in pairs.distinct(n_train // 2, (side, side), seed=2)]
    t1, c1 = time.perf_counter(), cpu()
    gv = views(gold, (2.0,), workers)
    t2, c2 = time.perf_counter(), cpu()
    res = query_all(gv, train, workers)
    t3, c3 = time.perf_counter(), cpu()
    total: dict = {}
    for _, st in res:
        for k, v in st.items():
            total[k] = total.get(k, 0) + v
    flagged = sum(len(f) for f, _ in res)
    print(f"false positives: {len(train):,} training x {len(gold):,} gold distinct fields (96 and 128 px, 7 textures), "
          f"all with one data bar, scale bar and '(a)': {total['pairs']:,} pairs; {total['voted']:,} reached the vote "
          f"threshold, {total['verified']:,} passed the pre-check and were verified in full, {flagged} flagged")
    print(f"  time: render {t1 - t0:.0f} s; gold keypoints {c2 - c1:.0f} CPU-s; {len(train):,} queries {c3 - c2:.0f} CPU-s "
          f"({(c3 - c2) / len(train) * 1e3:.0f} ms per training image vs {len(gold):,} gold; wall {t3 - t2:.0f} s on {workers} workers)")


def recall(n: int, size: int, workers: int) -> None:
    from fracdata.dataset.overlap import work_factor
    from fracdata.synth import pairs

    fillers = {f"f{k}": a for k, a in enumerate(pairs.distinct(1000, (size, size), seed=5))}
    fv = views(fillers, (2.0,), workers)
    print(f"recall at {size} px (derived image {size} px, parents up to {3 * size} px), {n} pairs per transform, "
          "found / tried: gold = parent | gold = derived; with 100 gold | with 1,000 gold")
    for how in pairs.TRANSFORMS:
        pp = [pairs.related(how, 100 + s, (size, size)) for s in range(n)]
        line = []
        for gold_side in (0, 1):
            gold = {f"t{s}": p[gold_side] for s, p in enumerate(pp)}
            train = [p[1 - gold_side] for p in pp]
            scales = tuple({work_factor(a.shape[::-1]) for a in train})
            gv = views(gold, scales, workers)
            got = []
            for n_gold in (100, 1000):
                extra = dict(list(fv.items())[: max(0, n_gold - n)])
                res = query_all({**extra, **gv}, train, workers)
                got.append([f"t{s}" in found for s, (found, _) in enumerate(res)])
                wrong = sum(len([g for g in found if g != f"t{s}"]) for s, (found, _) in enumerate(res))
                if wrong:
                    print(f"  {how}: {wrong} other gold image(s) flagged")
            same = "same pairs" if got[0] == got[1] else "DIFFERENT pairs"
            line.append(f"{sum(got[0])}/{n} | {sum(got[1])}/{n} ({same})")
        print(f"  {how:20s} gold = parent: {line[0]};  gold = derived: {line[1]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp-train", type=int, default=1000)
    ap.add_argument("--fp-gold", type=int, default=1000)
    ap.add_argument("--recall", type=int, default=30, help="pairs per transform at 128 px")
    ap.add_argument("--recall-large", type=int, default=10, help="pairs per transform at 256 px (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from fracdata.dataset import lookup, overlap, verify

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores); "
          "all images synthetic (fracdata.synth.pairs)")
    print(f"parameters: {overlap.N_TRAIN} keypoints per image (x{overlap.FACTORS[0]:g} up to {overlap.SMALL_SIDE} px), "
          f"votes >= {lookup.MIN_VOTES} in one Hough bin, pre-check spread >= {lookup.MIN_SPREAD}, verification "
          f">= {verify.MIN_INLIERS} distinct inliers and block-median correlation >= {verify.MIN_CORRELATION}")
    c0 = cpu()
    false_positives(args.fp_train, args.fp_gold, args.workers)
    recall(args.recall, 128, args.workers)
    if args.recall_large:
        recall(args.recall_large, 256, args.workers)
    print(f"total {cpu() - c0:.0f} CPU-s; load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

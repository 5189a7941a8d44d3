"""The `fracdata synth` command line: arguments, then generate (synth/corpus.py) and print what it wrote;
with --papers, the synthetic papers for the miner (synth/papers.py)."""

from __future__ import annotations

import time

from fracdata.synth.corpus import COMMON, RARE, STREAMS, generate
from fracdata.synth.teacher import AGREEMENT, CONFUSION, MODES


# the image corpus's options: --papers refuses them rather than ignore them (papers.run_papers)
CORPUS_OPTIONS = ("n", "n_gold", "n_manual", "orientation", "gold_orientation", "teacher_agreement", "teacher_errors",
                  "random_teachers")


def add_arguments(p):
    p.add_argument("--out", required=True, help="output folder (replaced if it holds an earlier synth output)")
    p.add_argument("--papers", type=int, metavar="N", help="write N synthetic PDF and JATS papers with their ground "
                   "truth (papers.py) instead of the image corpus; --seed applies, the corpus options do not")
    p.add_argument("--seed", type=int, default=0, help="seed; the same seed gives byte-identical files (default 0)")
    p.add_argument("--n", type=int, default=3000, help="training (manifest) images (default 3000)")
    p.add_argument("--n-gold", type=int, default=200, help="gold benchmark images (default 200)")
    p.add_argument("--n-manual", type=int, default=60, help="manual rare-feature (fish_eye) images (default 60)")
    p.add_argument("--orientation", choices=("random", "canonical"), default="random",
                   help="training images: any growth direction, or all along +x (for the rotation ablation)")
    p.add_argument("--gold-orientation", choices=("random", "canonical", "all"), default="random",
                   help="gold images: any direction, along +x, or canonical turned by 0/90/180/270 deg in equal shares")
    p.add_argument("--teacher-agreement", type=float, default=AGREEMENT,
                   help=f"share of images whose simulated-teacher label set equals the oracle's exactly (default "
                        f"{AGREEMENT}: the 84%% GPT-5.2 vs human agreement of the review page's simulated "
                        "rebuttal, not the paper's; docs/study.md)")
    p.add_argument("--teacher-errors", nargs="+", choices=MODES, default=["random"],
                   help=f"teacher error kind(s), one file each: random substitutions, or systematic "
                        f"({CONFUSION[0]} called {CONFUSION[1]}) (default random)")
    p.add_argument("--random-teachers", type=int, default=1, metavar="K",
                   help="random teachers with independent errors (random.jsonl, random-2 ... random-K; default 1)")
    p.set_defaults(corpus_defaults={d: p.get_default(d) for d in CORPUS_OPTIONS})


def run(args) -> int:
    if args.papers is not None:  # the papers for the miner, not the image corpus (papers.py)
        from fracdata.synth.papers import run_papers

        return run_papers(args)
    t0 = time.perf_counter()
    s = generate(args.out, seed=args.seed, n=args.n, n_gold=args.n_gold, n_manual=args.n_manual,
                 orientation=args.orientation, gold_orientation=args.gold_orientation,
                 teacher_agreement=args.teacher_agreement, teacher_errors=args.teacher_errors,
                 random_teachers=args.random_teachers)
    dt = time.perf_counter() - t0
    c = s["counts"]
    out = s["out"]
    print(f"synth: wrote {c['manifest']:,} images in {c['papers']['manifest']:,} papers to {out}/manifest.jsonl "
          f"+ labels.jsonl (oracle, synthetic), orientation {s['config']['orientation']}")
    print(f"synth: wrote {c['manual']:,} manual {RARE} images to {out}/manual/ (labeler human)")
    rot = ", ".join(f"{k} deg: {v}" for k, v in c["gold_rotations"].items())
    print(f"synth: wrote {c['gold']:,} gold images to {out}/gold.jsonl (seed stream {STREAMS['gold']}, "
          f"orientation {s['config']['gold_orientation']}{'; ' + rot if rot else ''}); disjoint from training by sha256")
    units = {u: sum(v.get(u, 0) for v in c["units"].values()) for u in ("zoom2", "zoom3", "tiles4", "tiles9", "roi", "copy")}
    print(f"synth: {sum(c['data_bar'].values()):,} images carry a data bar of microscopes shared by all splits; "
          f"{units['zoom2'] + units['zoom3']:,} in zoom series, {units['tiles4'] + units['tiles9']:,} tiles "
          f"(source.parent set), {units['roi']:,} in ROI pairs, {units['copy']:,} in PNG + JPEG copies ({out}/figures.jsonl)")
    for mode, t in c["teacher"].items():
        tm, tg = t["manifest"], t["gold"]
        how = (f"{CONFUSION[0]} called {CONFUSION[1]} on {tm['confused']:,} + {tg['confused']:,} images, random "
               f"errors on {tm['random']:,} + {tg['random']:,}" if mode == "systematic" else "random errors")
        print(f"synth: wrote {out}/teacher/{mode}.jsonl + {mode}.gold.jsonl: simulated teacher ({how}); agrees with "
              f"the oracle on {tm['agree']:,}/{tm['images']:,} training images ({tm['agreement']:.3f}) and "
              f"{tg['agree']:,}/{tg['images']:,} gold ({tg['agreement']:.3f})")
    print(f"  {'feature':20s} {'manifest':>9s} {'manual':>7s} {'gold':>6s}")
    for f in (*COMMON, RARE):
        print(f"  {f:20s} {c['features']['manifest'].get(f, 0):9,d} {c['features']['manual'].get(f, 0):7,d} "
              f"{c['features']['gold'].get(f, 0):6,d}")
    print(f"  {'two-feature images':20s} {c['two_feature']['manifest']:9,d} {c['two_feature']['manual']:7,d} "
          f"{c['two_feature']['gold']:6,d}")
    total = c["manifest"] + c["manual"] + c["gold"]
    print(f"synth: {total:,} images in {dt:.1f} s ({total / dt:,.0f} images/s); config and counts in {out}/synth.json")
    return 0

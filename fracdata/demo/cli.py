"""The `fracdata demo` command line; the study it runs is demo/study.py, the labels demo demo/labels.py."""

from __future__ import annotations

from fracdata.demo.study import DEFAULT_STEPS, RECIPE
from fracdata.demo.study import run as run_study

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("--out", default=None, help="root folder for everything (default: . ; --ablation: demo-ablation)")
    p.add_argument("--ablation", action="store_true",
                   help="also train `no_rotation` (gold in all 4 orientations) and `full` on a systematic-error teacher")
    p.add_argument("--labels", action="store_true",
                   help="instead: four simulated teachers, their Dawid-Skene aggregate, the probe's suspects, students "
                        "of the random, systematic and aggregated labels, inheritance, the probe row (docs/labels.md)")
    p.add_argument("--seed", type=int, default=0, help="seed for synth, split and training (default 0)")
    p.add_argument("--n", type=int, default=3000, help="synthetic training images before augmentation (default 3000)")
    p.add_argument("--n-gold", type=int, default=200, help="held-out gold images (default 200)")
    p.add_argument("--n-manual", type=int, default=60, help="manual rare-feature images (default 60)")
    p.add_argument("--teacher-agreement", type=float, default=0.84,
                   help="share of images the simulated teacher labels exactly as the oracle (default 0.84, the "
                        "simulated rebuttal's figure: docs/study.md)")
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default: the demo recipe's, {DEFAULT_STEPS})")
    p.add_argument("--recipe", default=str(RECIPE), help="training recipe (default: the demo recipe)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra recipe override passed to fracdata train (repeatable)")
    p.add_argument("--min-gain", type=float, default=0.4,
                   help="fail unless the fine-tuned model's headline (strict per-image Jaccard) beats the base "
                        "model's by this much (default 0.4)")
    p.add_argument("--min-blank-gain", type=float, default=0.3,
                   help="fail unless the fine-tuned model's strict Jaccard beats its own blank-image score by this "
                        "much (default 0.3)")



def run(args) -> int:
    if args.labels:
        from fracdata.demo.labels import run_labels
        from fracdata.errors import FracdataError

        if args.ablation:
            raise FracdataError("--labels and --ablation are two demos: run one, then the other")
        return run_labels(args)
    return run_study(args)

"""`fracdata build`: validate, dedup, split, augment and render a LlamaFactory dataset.

    fracdata build                      # the embedded sample data/synthetic -> data/processed/synthetic
    fracdata build --manifest M --labels L [--labels L2] [--manual DIR] [--gold G] --out OUT --seed 0

This file is the command line; the steps are pipeline.py's: read and validate every record
(inputs.py); decode every image and check its id (decode.py); keep the gold benchmark out:
its papers, parents, copies and crops (guard.py, dedup.py, overlap.py); near dedup; split
grouped by paper (split.py); rotate the training split; rows and LlamaFactory's rules
(sharegpt.py); write into a temp folder and swap it in (outdir.py); the card (card.py).
Output files and formats: docs/build.md, docs/formats.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fracdata.errors import FracdataError

SAMPLE_DIR = Path("data/synthetic")
SAMPLE_OUT = Path("data/processed/synthetic")


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    val_fraction: float = 0.1  # of images, rounded; grouped by paper so the real share varies
    rotations: tuple[int, ...] = (90, 180, 270)  # degrees counter-clockwise, training split only
    min_side: int = 64
    max_pixels: int = 50_000_000
    max_aspect: float = 20.0
    near_dup_distance: int = 6  # phash bits; see dedup.py for why 6
    taxonomy: str | None = None  # None = the packaged taxonomy.yaml
    keep_negatives: bool = False  # keep images labelled "not a fracture surface" as "Features: none" rows


@dataclass
class Inputs:
    manifest: Path
    labels: list[Path]
    manual: Path | None = None
    gold: list[Path] = field(default_factory=list)

    def listing(self) -> list[tuple[str, Path]]:
        out = [("manifest", self.manifest)] + [("labels", p) for p in self.labels]
        if self.manual:
            out.append(("manual", self.manual))
        return out + [("gold", p) for p in self.gold]


def add_arguments(p) -> None:
    from fracdata import flags

    p.add_argument("--manifest", type=Path, help="mined images: ManifestRecord JSONL")
    p.add_argument("--labels", type=Path, action="append", default=[], help="LabelRecord JSONL (repeatable)")
    p.add_argument("--manual", type=Path, help="manual collection: folder with labels.jsonl (human), images, optional manifest.jsonl")
    p.add_argument("--gold", type=Path, action="append", default=[], help="gold benchmark GoldRecord JSONL (repeatable); none of its images may be in training")
    p.add_argument("--out", type=Path, help=f"output folder (default with no inputs: {SAMPLE_OUT})")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share of images, 0 < f < 1 (default 0.1)")
    p.add_argument("--rotations", default="90,180,270", help="training-split rotations, subset of 90,180,270; '' for none (default 90,180,270)")
    p.add_argument("--min-side", type=flags.number(int, 1, 100_000), default=64, help="reject images whose shorter side is below this (default 64 px)")
    p.add_argument("--max-pixels", type=flags.count, default=50_000_000, help="reject images with more pixels (default 50,000,000; decompression-bomb guard)")
    p.add_argument("--max-aspect", type=flags.number(float, 1), default=20.0, help="reject images longer than this times their width (default 20)")
    p.add_argument("--near-dup-distance", type=flags.number(int, 0, 64), default=6, help="phash Hamming distance counted as a near copy (default 6 of 64 bits)")
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")
    p.add_argument("--keep-negatives", action="store_true",
                   help="keep images labelled 'not a fracture surface' as 'Features: none' rows (default: reject them, not_fractograph)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    p.add_argument("--workers", type=int, default=cores, help=f"processes for image work (default: all usable cores, {cores})")
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")


def parse_rotations(text: str) -> tuple[int, ...]:
    parts = [t.strip() for t in text.split(",") if t.strip() and t.strip().lower() != "none"]
    for t in parts:
        if t not in ("90", "180", "270"):
            raise FracdataError(f"--rotations: {t!r} is not one of 90, 180, 270")
    return tuple(sorted({int(t) for t in parts}))


def run(args) -> int:
    explicit = [args.manifest, args.labels, args.manual, args.gold, args.out]
    if not any(explicit):
        manifest = SAMPLE_DIR / "manifest.jsonl"
        if not manifest.is_file():
            raise FracdataError(f"{manifest}: not found; run `fracdata synth --out {SAMPLE_DIR}` first (or pass --manifest/--labels/--out)")
        manual = SAMPLE_DIR / "manual"
        gold = SAMPLE_DIR / "gold.jsonl"
        inputs = Inputs(manifest, [SAMPLE_DIR / "labels.jsonl"], manual if manual.is_dir() else None,
                        [gold] if gold.is_file() else [])
        out = SAMPLE_OUT
    else:
        missing = [flag for flag, v in (("--manifest", args.manifest), ("--labels", args.labels), ("--out", args.out)) if not v]
        if missing:
            raise FracdataError(f"{', '.join(missing)} required when inputs are given (or give no input arguments to build the embedded sample)")
        inputs, out = Inputs(args.manifest, list(args.labels), args.manual, list(args.gold)), args.out
    if not 0 < args.val_fraction < 1:
        raise FracdataError(f"--val-fraction {args.val_fraction}: must be between 0 and 1 (exclusive)")
    if args.workers < 1:
        raise FracdataError(f"--workers {args.workers}: must be at least 1")
    cfg = BuildConfig(args.seed, args.val_fraction, parse_rotations(args.rotations), args.min_side,
                      args.max_pixels, args.max_aspect, args.near_dup_distance, args.taxonomy, args.keep_negatives)
    build(inputs, out, cfg, workers=args.workers, force=args.force)
    return 0


def build(inputs: Inputs, out: Path, cfg: BuildConfig = BuildConfig(), *, workers: int = 2,
          force: bool = False, log=print) -> dict:
    """Build the dataset into `out` (atomically) and return the build.json summary (pipeline.py)."""
    from fracdata.dataset.pipeline import build as run_build

    return run_build(inputs, out, cfg, workers=workers, force=force, log=log)

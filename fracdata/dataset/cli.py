"""The `fracdata build` command line: arguments and their checks, the embedded sample as the default
input, then the build (pipeline.py)."""

from __future__ import annotations

import os
from pathlib import Path

from fracdata.dataset.config import BuildConfig, Inputs
from fracdata.dataset.pipeline import build
from fracdata.errors import FracdataError

SAMPLE_DIR = Path("data/synthetic")
SAMPLE_OUT = Path("data/processed/synthetic")


def add_arguments(p) -> None:
    from fracdata import flags

    p.add_argument("--manifest", type=Path, help="mined images: ManifestRecord JSONL")
    p.add_argument("--labels", type=Path, action="append", default=[], help="LabelRecord JSONL (repeatable)")
    p.add_argument("--manual", type=Path, help="manual collection: folder with labels.jsonl (human), images, optional manifest.jsonl")
    p.add_argument("--gold", type=Path, action="append", default=[], help="gold benchmark GoldRecord JSONL (repeatable); none of its images may be in training")
    p.add_argument("--waivers", type=Path, action="append", default=[],
                   help="JSONL of gold/training pairs a person judged distinct: {gold, train, reason, who} (repeatable; docs/build.md)")
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
    explicit = [args.manifest, args.labels, args.manual, args.gold, args.waivers, args.out]
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
        inputs, out = Inputs(args.manifest, list(args.labels), args.manual, list(args.gold), list(args.waivers)), args.out
    if not 0 < args.val_fraction < 1:
        raise FracdataError(f"--val-fraction {args.val_fraction}: must be between 0 and 1 (exclusive)")
    if args.workers < 1:
        raise FracdataError(f"--workers {args.workers}: must be at least 1")
    cfg = BuildConfig(args.seed, args.val_fraction, parse_rotations(args.rotations), args.min_side,
                      args.max_pixels, args.max_aspect, args.near_dup_distance, args.taxonomy, args.keep_negatives)
    build(inputs, out, cfg, workers=args.workers, force=args.force)
    return 0

"""The `fracdata mine` command line: arguments, their checks, then mine (pipeline.py) or merge (merge.py)
and the counts of what was written (kept + rejected = candidates)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fracdata import flags
    from fracdata.mine.filter import DEFAULT_MIN_SCORE
    from fracdata.licence import ALLOWED_FAMILIES
    from fracdata.mine.pipeline import DEFAULT_MAX_SIDE, DEFAULT_MIN_SIDE

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("examples:\n"
                "  fracdata mine papers/ --out data/mined\n"
                "  fracdata mine papers/ --shard $SLURM_ARRAY_TASK_ID/16 --out data/mined/shard-$SLURM_ARRAY_TASK_ID\n"
                "  fracdata mine merge data/mined/shard-* --out data/mined/all\n"
                "outputs: manifest.jsonl, images/, rejects.jsonl, evidence.jsonl, mine.json (docs/mine.md)")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="JATS .nxml/.xml files, PDFs, .tar.gz article packages, or folders holding them; "
                        "`merge SHARD_DIR...` merges shard outputs instead")
    p.add_argument("--out", required=True, type=Path, help="output folder (one per shard)")
    p.add_argument("--shard", metavar="i/N", help="mine only every N-th source from the i-th (i from 0), "
                                                  "e.g. --shard $SLURM_ARRAY_TASK_ID/16 with --array=0-15")
    p.add_argument("--max-side", type=flags.pixels, default=DEFAULT_MAX_SIDE, help="longest image side in px (default %(default)s)")
    p.add_argument("--min-side", type=flags.number(int, 1, 100_000), default=DEFAULT_MIN_SIDE,
                   help="panels with a shorter side are rejected as too_small (default %(default)s)")
    p.add_argument("--min-score", type=flags.number(float), default=DEFAULT_MIN_SCORE,
                   help="fracture-surface evidence score a figure needs (default %(default)s)")
    p.add_argument("--allow-any-licence", action="store_true",
                   help=f"keep figures whatever their licence (default: only {', '.join(sorted(ALLOWED_FAMILIES))})")
    p.add_argument("--no-panels", action="store_true", help="do not split multi-panel figures")
    p.add_argument("--force", action="store_true", help="mine every source again, ignoring OUT/.state")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an OUT that mine did not write (its stray PNGs in images/ are deleted)")


def _fmt(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def _run_merge(args) -> int:
    from fracdata.mine.merge import merge

    mining = [f"--{k.replace('_', '-')}" for k in ("shard", "allow_any_licence", "no_panels", "force")
              if getattr(args, k)]
    if mining:
        raise FracdataError(f"mine merge: {', '.join(mining)} {'is' if len(mining) == 1 else 'are'} for mining only; "
                            "merge takes SHARD_DIR... --out DIR")
    if len(args.sources) < 2:
        raise FracdataError("mine merge: name the shard folders to merge, e.g. fracdata mine merge out/shard-* --out out/all")
    r = merge(args.sources[1:], args.out)
    print(f"mine merge: {len(r['inputs'])} manifests, {r['read']} records read = {r['kept']} kept + {r['rejected']} rejected")
    print(f"  rejects by reason: {_fmt(r['reasons'])}; {r['carried']} shard rejects carried over")
    stale = f", {r['stale']} stale removed" if r["stale"] else ""
    print(f"wrote {args.out / 'manifest.jsonl'} ({r['manifest']} records), {args.out / 'images'}/ ({r['kept']} PNG{stale}), "
          f"{args.out / 'rejects.jsonl'} ({r['rejects']}), {args.out / 'evidence.jsonl'} ({r['evidence']})")
    return 0


def run(args) -> int:
    import logging
    from dataclasses import asdict

    from fracdata import __version__
    from fracdata.cli import parse_shard
    from fracdata.files import check_outputs
    from fracdata.mine.outputs import outputs
    from fracdata.mine.pipeline import Settings, mine

    if args.sources[0] == "merge":
        return _run_merge(args)
    # pypdf logs each repair of a damaged file as a warning; the outcome is already a counted
    # reject with pypdf's message, so the warnings would only bury the summary.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    settings = Settings(max_side=args.max_side, min_side=args.min_side, min_score=args.min_score,
                        allow_any_licence=args.allow_any_licence, panels=not args.no_panels)
    shard = parse_shard(args.shard)
    check_outputs(outputs(args.out), args.sources, overwrite=args.overwrite)

    def progress(sf):
        progress.n += 1
        if progress.n % 100 == 0:
            print(f"  ... {progress.n} sources", file=sys.stderr)
    progress.n = 0

    r = mine(args.sources, args.out, settings, shard, force=args.force, progress=progress)
    c, kinds = r.counts, {k: sum(sf.kind == k for sf in r.sources) for k in ("jats", "pdf", "package")}
    rejected = sum(r.levels.values())
    candidates = c["sources_rejected"] + c["pages_rejected"] + c["figures"] + c["images"] - c["passed"]
    packages = f" ({kinds['package']} in .tar.gz packages)" if kinds["package"] else ""
    print(f"mine: {len(r.sources)} sources ({kinds['jats'] + kinds['package']} JATS{packages}, {kinds['pdf']} PDF, "
          f"{c['pages']} PDF pages)"
          f"{f' in shard {shard[0]}/{shard[1]}' if shard[1] > 1 else ''}: {r.mined} mined now, "
          f"{r.reused} done earlier (reused); {r.other_files} other files in the folders")
    print(f"  sources  {len(r.sources)} = {len(r.sources) - r.levels['source']} parsed + {r.levels['source']} rejected")
    if c["pages_rejected"]:  # a page that fails to parse costs that page, not the paper
        print(f"  pages    {c['pages']} read = {c['pages'] - c['pages_rejected']} parsed + {c['pages_rejected']} rejected")
    print(f"  figures  {c['figures']} found = {c['passed']} passed + {r.levels['figure']} rejected")
    print(f"  images   {c['images']} cut from {c['passed']} figures = {c['kept']} kept + {r.levels['image']} rejected")
    print(f"  kept {c['kept']} + rejected {rejected} = {candidates} candidates")
    print(f"  rejects by reason: {_fmt(r.reasons)}")
    if c["dynamic_range_warnings"]:
        print(f"  warning: {c['dynamic_range_warnings']} 16-bit/float figures with a degenerate dynamic range "
              "(flat, or a few outliers on one value: docs/formats.md), kept")
    if r.licences:
        print(f"  licence_not_allowed by licence: {_fmt(r.licences)}")
    assert c["kept"] + rejected == candidates, "mine: counts do not add up"  # a bug, never a data problem
    info = {"fracdata_version": __version__, "settings": asdict(settings) | {"key": settings.key()},
            "shard": f"{shard[0]}/{shard[1]}", "sources": [sf.rel for sf in r.sources],
            "counts": dict(c), "rejects_by_reason": dict(r.reasons), "licence_not_allowed": dict(r.licences)}
    atomic_write_bytes(args.out / "mine.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    w = r.written
    stale = f", {w['stale images removed'][1]} stale removed" if w["stale images removed"][1] else ""
    print(f"wrote {w['manifest'][0]} ({w['manifest'][1]} records), {w['images'][0]}/ ({w['images'][1]} PNG{stale}), "
          f"{w['rejects'][0]} ({w['rejects'][1]}), {w['evidence'][0]} ({w['evidence'][1]}), {args.out / 'mine.json'}")
    return 0

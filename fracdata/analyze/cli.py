"""The `fracdata analyze` command line: arguments, their checks, then the images given (one_file.py)
or the watched folder (watch.py), and the counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fracdata.analyze.one_file import DEGRADED, analyse_file
from fracdata.errors import FracdataError

DEFAULT_OUT = "reports/analyze"


def add_arguments(p) -> None:
    from fracdata.analyze.options import add_model_arguments

    p.add_argument("images", nargs="*", metavar="IMAGE", help="fractographs to analyse (PNG, JPEG, TIFF, BMP, WebP)")
    p.add_argument("--context", metavar="FILE", help="text file: material, loading, service history (given to the generalist)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    g = p.add_argument_group("watch mode (the loop an autonomous microscope runs)")
    g.add_argument("--watch", metavar="DIR", help="analyse each new image in DIR once (by file and pixel id), until stopped")
    g.add_argument("--log", help="JSONL log appended per analysis (default <out>/analyses.jsonl); its ids are the state")
    g.add_argument("--poll", type=float, default=1.0, help="seconds between scans of DIR (default 1)")
    g.add_argument("--settle", type=float, default=1.0,
                   help="seconds a file must be unchanged before it is read: a microscope may still be writing it")
    g.add_argument("--once", action="store_true", help="scan DIR once, analyse what is there, exit")
    add_model_arguments(p)


def run(args) -> int:
    from fracdata.analyze.options import build_analyzer, read_context
    from fracdata.records import dump_jsonl

    if args.watch and args.images:
        raise FracdataError("give IMAGE... or --watch DIR, not both")
    if not args.watch and not args.images:
        raise FracdataError("nothing to analyse: give IMAGE... or --watch DIR")
    if args.once and not args.watch:
        raise FracdataError("--once belongs to --watch")
    context = read_context(args.context)
    out_dir = Path(args.out)
    if args.watch:
        from fracdata.analyze.watch import watch

        return watch(args, context, out_dir)
    analyzer = build_analyzer(args)
    done, rejects = [], []
    for image in args.images:
        analysis, result = analyse_file(analyzer, Path(image), context, out_dir)
        (done if analysis is not None else rejects).append(analysis or result)
        if analysis is None:
            print(f"rejected {image}: {result.reason}: {result.detail}")
    out_dir.mkdir(parents=True, exist_ok=True)
    n = dump_jsonl(rejects, out_dir / "rejects.jsonl")  # this run's rejects (kept + rejected = images given)
    degraded = sum(any(f.kind in DEGRADED for f in a.flags) for a in done)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.reason for r in rejects).items())) or "none"
    costs = [a.cost_usd for a in done]
    cost = "unknown (unpriced model)" if None in costs else f"${sum(costs):.4f}"
    print(f"analysed {len(done)} of {len(args.images)} images into {out_dir}/ ({len(done) - degraded} with the "
          f"generalist's report or no generalist, {degraded} specialist-only after a failure or the budget); "
          f"wrote {out_dir / 'rejects.jsonl'}: {n} rejected ({reasons}); cost {cost}")
    return 1 if rejects or degraded else 0

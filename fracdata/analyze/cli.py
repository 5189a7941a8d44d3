"""The `fracdata analyze` command line: arguments, their checks, then the images given (one_file.py)
or the watched folder (watch.py), and the counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fracdata.analyze.one_file import DEGRADED, _sha, analyse_file
from fracdata.analyze.pipeline import AlreadyDone
from fracdata.errors import FracdataError

DEFAULT_OUT = "reports/analyze"


def add_arguments(p) -> None:
    from fracdata import flags
    from fracdata.analyze.options import add_model_arguments

    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="fractographs to analyse (PNG, JPEG, TIFF, BMP, WebP), folders of them, or glob patterns "
                        "('DIR/**/*.tif'); the same pixels in several files are analysed once")
    p.add_argument("--context", metavar="FILE", help="text file: material, loading, service history (given to the generalist)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    g = p.add_argument_group("watch mode (the loop an autonomous microscope runs)")
    g.add_argument("--watch", metavar="DIR", help="analyse each new image in DIR once (by file and pixel id), until stopped")
    g.add_argument("--log", help="JSONL log appended per analysis (default <out>/analyses.jsonl); its ids are the state")
    g.add_argument("--poll", type=flags.positive, default=1.0, help="seconds between scans of DIR (default 1)")
    g.add_argument("--settle", type=flags.non_negative, default=1.0,
                   help="seconds a file must be unchanged before it is read: a microscope may still be writing it")
    g.add_argument("--once", action="store_true", help="one pass: analyse the images in DIR when it starts, then exit")
    p.add_argument("--overwrite", action="store_true", help="replace a rejects file or --log that analyze did not write")
    add_model_arguments(p)


def run(args) -> int:
    from fracdata.analyze.options import build_analyzer, read_context
    from fracdata.files import Output, check_outputs, jsonl_of
    from fracdata.records import Reject, dump_jsonl

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
    from fracdata.analyze.inputs import expand, listed_in

    files = expand(args.images)  # before the model loads: a pattern matching nothing is an error
    check_outputs([Output(out_dir / "rejects.jsonl", "rejects file", jsonl_of(Reject, "an analyze reject"))],
                  [*files, args.context], overwrite=args.overwrite)
    analyzer = build_analyzer(args)
    done, rejects, same = {}, [], 0
    for image in files:
        try:
            analysis, result = analyse_file(analyzer, image, context, out_dir, done=done.keys())
        except AlreadyDone as e:  # the same pixels as an earlier file: listed in its report, not analysed again
            same += 1
            listed_in(done[e.id], image, _sha(image), out_dir)
            continue
        if analysis is None:
            rejects.append(result)
            print(f"rejected {image}: {result.reason}: {result.detail}")
        else:
            done[analysis.id] = analysis
    done = list(done.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    n = dump_jsonl(rejects, out_dir / "rejects.jsonl")  # this run's rejects (kept + rejected = images given)
    degraded = sum(any(f.kind in DEGRADED for f in a.flags) for a in done)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.reason for r in rejects).items())) or "none"
    costs = [a.cost_usd for a in done]
    cost = "unknown (unpriced model)" if None in costs else f"${sum(costs):.4f}"
    twins = (f"; {same} more files hold the same pixels as one of them (analysed once, listed in its report)"
             if same else "")
    print(f"analysed {len(done)} of {len(files)} images{twins} into {out_dir}/ ({len(done) - degraded} with the "
          f"generalist's report or no generalist, {degraded} specialist-only after a failure or the budget); "
          f"wrote {out_dir / 'rejects.jsonl'}: {n} rejected ({reasons}); cost {cost}")
    return 1 if rejects or degraded else 0

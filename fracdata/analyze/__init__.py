"""`fracdata analyze`: the fine-tuned specialist reads a fractograph, a general model writes the report.

    fracdata analyze IMAGE... --specialist tiny-ft [--generalist gpt-5.5] [--context FILE] [--out DIR]
    fracdata analyze --watch DIR --specialist tiny-ft [--log FILE] [--once]

Per image it writes <out>/<id12>.json (schema fracdata-analysis v1), .md and .png (the image with
the report beside it). Images it cannot read go to <out>/rejects.jsonl with the reason.
Exit status: 0 every image analysed with the generalist's report (or no generalist key),
1 some image rejected or reported by the specialist alone after a generalist failure or an
exhausted budget, 2 error (no specialist, the specialist failed, bad flags).
Modules: options (flags, models), specialist, decide (probabilities, needs a person), generalist, schema,
pipeline, report, inputs (folders and globs), watch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fracdata.analyze.pipeline import AlreadyDone
from fracdata.errors import FracdataError

DEFAULT_OUT = "reports/analyze"
DEGRADED = ("generalist_failed", "budget_exhausted")


def add_arguments(p) -> None:
    from fracdata.analyze.options import add_model_arguments

    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="fractographs to analyse (PNG, JPEG, TIFF, BMP, WebP), folders of them, or glob patterns "
                        "('DIR/**/*.tif'); the same pixels in several files are analysed once")
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


def summary_line(a) -> str:
    s = a.specialist
    feats = ", ".join(f"{f.id}" + (f" {f.probability:.2f}" if f.probability is not None else "") for f in s.features)
    kinds = Counter(f.kind for f in a.flags)
    gen = "generalist report" if a.generalist else "specialist only"
    flags = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    person = "NEEDS A PERSON" if a.needs_person else "no person needed"
    return f"{len(s.features)} features ({feats or s.status}); {person}; {gen}; flags: {flags}"


def analyse_file(analyzer, path: Path, context, out_dir: Path, log=print, done=frozenset()):
    """(Analysis, outputs) or (None, Reject) for one file; AlreadyDone (its pixel id is in
    `done`) and FracdataError pass through. Any damage to the file is a Reject (the image gate)."""
    from fracdata.analyze.report import write_outputs
    from fracdata.images import ImageReject
    from fracdata.records import Reject

    try:
        analysis, image = analyzer.analyse(path, str(path), context, done)
    except ImageReject as e:
        return None, Reject(stage="analyze", file=str(path), reason=e.reason, detail=e.detail, file_sha256=_sha(path))
    paths = write_outputs(analysis, image, out_dir)
    log(f"wrote {out_dir / analysis.id[:12]}.{{json,md,png}} for {path}: {summary_line(analysis)}")
    return analysis, paths


def _sha(path: Path) -> str | None:
    """sha256 of a regular file's bytes (a FIFO is never opened), else None."""
    import stat

    from fracdata.records import sha256_file

    try:
        return sha256_file(path) if stat.S_ISREG(path.stat().st_mode) else None
    except (OSError, ValueError):
        return None


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
    from fracdata.analyze.inputs import expand, listed_in

    files = expand(args.images)  # before the model loads: a folder or pattern with nothing in it is an error
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


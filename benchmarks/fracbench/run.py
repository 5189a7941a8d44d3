"""`fracbench run`: infer + score + report for a list of models (what `make bench` calls).

Models whose key variable is unset are skipped with one line and left out of the scores;
`--blank NAME` adds NAME's blank-image control (`NAME-blank`). Prints the report path last.
"""

from __future__ import annotations

from fracdata.errors import FracdataError

DEFAULT_MODELS = ["tiny-base", "tiny-ft"]


def add_arguments(p) -> None:
    from fracbench.infer import add_common

    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="M",
                   help=f"model entries (names from `fracbench models`, or YAML paths; default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--blank", action="append", default=[], metavar="NAME",
                   help="also run NAME's blank-image control, scored as NAME-blank (repeatable)")
    p.add_argument("--inherit", action="append", metavar="STUDENT=TEACHER",
                   help="also report what STUDENT inherited from TEACHER's labels, per feature (repeatable)")
    add_common(p)


def run(args) -> int:
    from fracbench.infer import exclusive_out

    with exclusive_out(args.out, args):  # one run per output folder: a second would pay for the same items
        return _run(args)


def _run(args) -> int:
    from fracbench.infer import check_overrides, infer_model, setup
    from fracbench.report import report_dir
    from fracbench.score import score_dir

    task, task_path, thash, tax, items, gold, cache, entry = setup(args)
    print(f"task {task.name} v{task.version} ({thash[:12]}): {len(items)} gold items from {gold}"
          + (f" (--limit {args.limit}: NOT A SCORE)" if args.limit else ""))
    entries = [entry(ref) for ref in args.models]  # load all first: a bad entry fails before any model runs
    check_overrides(entry, [e.name for e in entries])
    unknown = set(args.blank) - {e.name for e in entries}
    if unknown:
        raise FracdataError(f"--blank {sorted(unknown)[0]}: not one of --models ({', '.join(e.name for e in entries)})")
    reads_no_image = sorted(e.name for e in entries if e.name in args.blank and e.kind == "labels")
    if reads_no_image:
        raise FracdataError(f"--blank {reads_no_image[0]}: a `labels` entry reads no image, so it has no blank-image control")
    scored = []
    for e in entries:
        for control in [None] + (["blank"] if e.name in args.blank else []):
            meta = infer_model(task, task_path, thash, tax, e, items, gold, args.out, cache,
                               limit=args.limit, control=control, adapter_check=args.adapter_check)
            if meta is not None:
                scored.append(meta["model"])
    if not scored:
        raise FracdataError("no model could be run (see the skipped lines above)")
    score_dir(args.out, scored, inherit=args.inherit)
    report_dir(args.out)
    return 0

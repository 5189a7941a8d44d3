"""`fracdata release` command line: `dataset` (dataset.py) and `model` (model.py), `--push` (hub.py).

Only the chosen action's modules are imported, and nothing heavy before it runs, so `--help` works
without the `release` extra.
"""


from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    from fracdata.release.dataset import DEFAULT_SRC

    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = sub.add_parser("dataset", help="a built dataset as Parquet + a Hub dataset card + dataset_info.json")
    d.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_SRC, help=f"the `fracdata build` folder (default {DEFAULT_SRC})")
    d.add_argument("--out", type=Path, help="release folder (default: data/release/<dataset folder name>)")
    d.add_argument("--variants", help="comma-separated training variants to release (default: all); val always")
    d.add_argument("--manifest", type=Path, help="the manifest the build read, if it moved (its sha256 is checked)")
    d.add_argument("--manual", type=Path, help="the manual collection the build read, if it moved")
    d.add_argument("--repo", help="the Hub dataset repo it will live in (ORG/NAME): adds `<name>_hub` entries to "
                                  "dataset_info.json for LlamaFactory's `dataset_dir: REMOTE:ORG/NAME`")
    _push(d, "dataset")
    m = sub.add_parser("model", help="the model card of a training run (README.md in the run folder)")
    m.add_argument("run", type=Path, help="the run folder `fracdata train` wrote (output_dir)")
    m.add_argument("--metrics", type=Path, help="fracbench's metrics.json: the scores, CIs and coverage go on the card")
    m.add_argument("--bench-model", help="this checkpoint's row in --metrics (default: the row whose path or adapter is RUN)")
    m.add_argument("--licence", "--license", dest="licence", help="Hub licence id, e.g. apache-2.0 (default: the "
                   "base model card's licence, else `other`)")
    m.add_argument("--base-model", help="the base model's Hub id, when it was trained from a local folder")
    m.add_argument("--dataset-repo", help="the Hub dataset repo of the training data (`fracdata release dataset --push`)")
    m.add_argument("--name", help="model name on the card (default: the run folder's name)")
    m.add_argument("--out", type=Path, help="write the card here instead of RUN/README.md")
    _push(m, "model")


def _push(p, kind: str) -> None:
    p.add_argument("--push", metavar="ORG/NAME", help=f"also upload to this Hub {kind} repo (your token: HF_TOKEN or "
                   "`hf auth login`); nothing uploads without it")
    p.add_argument("--private", action="store_true", help="--push: create the repo private")


def run(args) -> int:
    from fracdata.release.hub import folder_files, push, ready, run_files

    if args.push:
        ready(args.push)  # no token, or offline: say so before any work
    if args.action == "dataset":
        from fracdata.release.dataset import release_dataset

        out = args.out or Path("data/release") / args.dataset.resolve().name
        variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
        release_dataset(args.dataset, out, variants=variants, manifest=args.manifest, manual=args.manual,
                        repo=args.push or args.repo)
        if args.push:
            push(folder_files(out), args.push, "dataset", "fracdata release dataset", args.private)
        return 0
    from fracdata.release.model import release_model

    card = release_model(args.run, metrics=args.metrics, bench_model=args.bench_model, out=args.out,
                         licence=args.licence, base=args.base_model, dataset_repo=args.dataset_repo, name=args.name)
    if args.push:
        files = run_files(args.run)
        files["README.md"] = card
        push(files, args.push, "model", "fracdata release model", args.private)
    return 0

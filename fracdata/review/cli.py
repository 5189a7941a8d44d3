"""The `fracdata review` command line: the five actions' arguments, then the flow (flow.py)."""

from __future__ import annotations

from pathlib import Path

from fracdata import flags
from fracdata.errors import FracdataError


def _server(p) -> None:
    p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL)")
    p.add_argument("--token", help="access token, personal or legacy (default: $LABEL_STUDIO_API_KEY)")


def _prepare_common(p) -> None:
    p.add_argument("--out", required=True, help="the review folder to create (review.json, tasks.json, label_config.xml)")
    p.add_argument("--image-url", metavar="PREFIX",
                   help="tasks.json shows PREFIX + each image's path relative to --out instead of embedding "
                        "the image as a data: URL (a web server, or Label Studio local-files storage)")
    p.add_argument("--push", action="store_true", help="also create the Label Studio project now (fracdata review push)")
    p.add_argument("--title", help="project title (default: fracdata <kind> review <folder name>)")
    p.add_argument("--force", action="store_true", help="replace an existing review in --out (its uid changes)")
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")
    _server(p)


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = sub.add_parser("gold", help="a gold-benchmark review: two or more annotators label each image independently")
    g.add_argument("--manifest", required=True, help="manifest of the candidate benchmark images")
    g.add_argument("--ids", help="file of image ids to review (whitespace-separated); default: every image")
    g.add_argument("--n", type=flags.count, help="review a seeded random sample of N images")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--annotators", type=int, default=2, help="annotators per image (Label Studio overlap; default 2)")
    _prepare_common(g)
    a = sub.add_parser("audit", help="audit GPT labels: the stratified sample of `fracdata audit sample`, blind by default")
    a.add_argument("--labels", required=True, help="GPT labels JSONL (fracdata label)")
    a.add_argument("--manifest", required=True, help="the manifest the labels came from")
    a.add_argument("--n", type=flags.count, required=True, help="images in the sample")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--show-gpt", action="store_true", help="show the GPT answer as a pre-annotation (not blind)")
    a.add_argument("--suspects", help="suspects JSONL (fracdata probe): the N images with the likeliest label errors, "
                                      "likeliest first, pre-annotated with the labels under suspicion (not a random sample)")
    _prepare_common(a)
    m = sub.add_parser("manual", help="label a folder of collected rare-feature images (the manual collection)")
    m.add_argument("--folder", required=True, help="the collection folder (images, optional manifest.jsonl)")
    _prepare_common(m)
    s = sub.add_parser("push", help="create the review's Label Studio project: view, images, tasks (API route)")
    s.add_argument("dir", help="the review folder")
    s.add_argument("--title", help="project title")
    s.add_argument("--taxonomy")
    _server(s)
    i = sub.add_parser("import", help="read the annotations (API, or --export FILE) and write the review's outputs")
    i.add_argument("dir", help="the review folder")
    i.add_argument("--export", help="a Label Studio JSON export of the project (file route); default: pull over the API")
    i.add_argument("--out", help="gold: the gold JSONL (default DIR/gold.jsonl); audit: the human labels "
                                 "(default DIR/human_labels.jsonl); manual: default COLLECTION/labels.jsonl")
    i.add_argument("--adjudicator", help="gold: the person whose annotation settles images the annotators disagree on")
    i.add_argument("--min-annotators", type=int, default=2, help="gold: agreeing annotators needed (default 2)")
    i.add_argument("--annotator", action="append", default=[], metavar="KEY=NAME",
                   help="name a Label Studio user (KEY = user id or email) in the outputs; repeatable")
    i.add_argument("--labels", help="audit: the GPT labels to score against (default: the file the sample came from)")
    i.add_argument("--force", action="store_true", help="replace output files this review did not write")
    i.add_argument("--taxonomy")
    _server(i)


def run(args) -> int:
    from fracdata.review import flow
    from fracdata.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(args.taxonomy)
    if args.action in ("gold", "audit", "manual"):
        review, out = flow.prepare_review(args, taxonomy)
        if args.push:
            flow.push(review, out, taxonomy, args.url, args.token, args.title)
        else:
            print(f"next: fracdata review push {out}  (API), or in the Label Studio UI: create a project, paste "
                  f"{out / 'label_config.xml'} in Settings > Labeling Interface > Code, import {out / 'tasks.json'}")
        return 0
    folder = Path(args.dir)
    if args.action == "push":
        from fracdata.review import state

        flow.push(state.load(folder), folder, taxonomy, args.url, args.token, args.title)
        return 0
    if args.action == "import":
        return flow.import_review(args, folder, taxonomy)
    raise FracdataError(f"unknown review action {args.action!r}")

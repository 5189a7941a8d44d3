"""The review's three steps: prepare a folder, push it to Label Studio, import the annotations."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes
from fracdata.records import dump_jsonl
from fracdata.review import export, gold, labels, prepare, state
from fracdata.review.config import label_config

INSTRUCTIONS = {
    "gold": "Label independently: do not discuss images or look at other annotations before you submit. Tick every "
            "feature the image shows (hover a name for its visual description); submit with none ticked when "
            "it shows none. Tick 'not a fracture surface' for micrographs, schematics, plots; 'unsure' when you "
            "cannot decide (the adjudicator will).",
    "audit": "Tick every feature the image shows (hover a name for its visual description); submit with none "
             "ticked when it shows none. 'unsure' leaves the image out of the audit.",
    "manual": "Tick every feature the image shows (hover a name for its visual description). Images marked "
              "'not a fracture surface' or 'unsure' stay out of the collection's labels.",
}


def prepare_review(args, taxonomy) -> tuple[state.Review, Path]:
    from fracdata.files import Output, check_outputs

    out = Path(args.out)
    inputs = [getattr(args, k, None) for k in ("manifest", "labels", "ids")]
    check_outputs([Output(out / name, "review file") for name in (state.STATE, "tasks.json", "label_config.xml")], inputs)
    if (out / state.STATE).exists() and not args.force:
        old = state.load(out)
        where = f", pushed to {old.server.url} project {old.server.project}" if old.server else ""
        raise FracdataError(f"{out / state.STATE}: already holds a {old.kind} review (uid {old.uid}{where}): "
                            "use another --out, or --force to start a new one")
    out.mkdir(parents=True, exist_ok=True)
    rejects = prepare.Rejects()
    kw = {}
    if args.action == "gold":
        if args.annotators < 2:
            raise FracdataError("--annotators must be at least 2 for a gold review (kappa needs two)")
        items = prepare.gold_items(Path(args.manifest), out, Path(args.ids) if args.ids else None, args.n,
                                   args.seed, rejects)
        kw["annotators"] = args.annotators
    elif args.action == "audit" and args.suspects:  # the likeliest label errors first, pre-annotated
        items, kw["sample"] = prepare.suspect_items(Path(args.labels), Path(args.manifest), Path(args.suspects), out,
                                                    args.n, taxonomy, rejects)
        kw.update(labels=state.rel(Path(args.labels), out), show_gpt=True, suspects=state.rel(Path(args.suspects), out))
    elif args.action == "audit":
        items, kw["sample"] = prepare.audit_items(Path(args.labels), Path(args.manifest), out, args.n, args.seed,
                                                  taxonomy, rejects)
        kw.update(labels=state.rel(Path(args.labels), out), show_gpt=args.show_gpt)
    else:
        folder = Path(args.folder)
        if out.resolve().is_relative_to(folder.resolve()):
            raise FracdataError(f"{out}: the review folder may not be inside the collection {folder} "
                                "(the builder would read its files as images)")
        items = prepare.manual_items(folder, out, rejects)
        kw["folder"] = state.rel(folder, out)
    return prepare.prepare(args.action, out, taxonomy, items, rejects, args.image_url, **kw), out


def push(review: state.Review, folder: Path, taxonomy, url, token, title) -> None:
    from tqdm import tqdm

    from fracdata.review.studio import Studio

    if review.server is not None:
        raise FracdataError(f"{folder / state.STATE}: already pushed to {review.server.url} project "
                            f"{review.server.project}; prepare a new review folder to push again")
    studio = Studio(url, token)
    title = title or f"fracdata {review.kind} review {folder.resolve().name}"
    settings = {"maximum_annotations": review.annotators, "show_collab_predictions": review.show_gpt,
                "expert_instruction": INSTRUCTIONS[review.kind], "show_instruction": True, "show_skip_button": True}
    if review.show_gpt:
        settings["model_version"] = "gpt"
    project = studio.create_project(title, f"fracdata review {review.uid} ({review.kind}, "
                                           f"{len(review.items)} images, taxonomy v{review.taxonomy_version})", **settings)
    try:
        urls = {}
        for item in tqdm(review.items, desc="upload", unit="image", file=sys.stderr, disable=not sys.stderr.isatty()):
            data, mime = prepare.display_image(folder / item.image)
            urls[item.id] = studio.upload_image(project, data, mime, f"{item.id}.{mime.split('/')[1]}")
        studio.set_label_config(project, label_config(taxonomy, review.kind, review.suspects is not None))
        tasks = [prepare.task(review, item, urls[item.id], taxonomy) for item in review.items]
        ids = studio.import_tasks(project, tasks)
        if len(ids) != len(tasks):
            raise FracdataError(f"Label Studio made {len(ids)} tasks of {len(tasks)}")
    except FracdataError as e:
        raise FracdataError(f"{e} (project {project} at {studio.url} is incomplete: delete it and push again)") from None
    review.server = state.Server(url=studio.url, project=project, tasks=len(ids))
    state.save(review, folder)
    print(f"created Label Studio project {project} at {studio.url}/projects/{project}: {len(urls)} images uploaded, "
          f"{len(ids)} tasks, {review.annotators} annotator(s) per task"
          + ("; GPT answers as pre-annotations" if review.show_gpt else ""))
    print(f"wrote {folder / state.STATE}: the project id (fracdata review import {folder} pulls its annotations)")


def _names(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, name = p.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise FracdataError(f"--annotator {p!r}: expected KEY=NAME (KEY a Label Studio user id or email)")
        out[key.strip()] = name.strip()
    return out


def _read(args, review: state.Review, folder: Path, taxonomy):
    names = _names(args.annotator)
    if args.export:
        path = Path(args.export)
        return (*export.read_export(export.load_export(path), review, taxonomy, str(path), {}, names), str(path))
    if review.server is None:
        raise FracdataError(f"{folder / state.STATE}: this review was never pushed to Label Studio: pass --export FILE "
                            "(the project's JSON export) or run fracdata review push first")
    from fracdata.review.studio import Studio

    studio = Studio(args.url or review.server.url, args.token)
    tasks = studio.export(review.server.project)
    where = f"{studio.url}/projects/{review.server.project}"
    try:
        users = studio.users()
    except FracdataError:  # a token without the right to list users: --annotator names them
        users = {}
    return (*export.read_export(tasks, review, taxonomy, where, users, names), where)


def _check(review, folder, paths, force, inputs=()):
    from fracdata.files import Output, check_outputs

    check_outputs([Output(p, "review import output") for p in paths], [*inputs, folder / state.STATE])
    for p in paths:
        state.check_writable(review, folder, p, force)


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())


def _write_jsonl(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = dump_jsonl(rows, tmp)
    tmp.replace(path)
    return n


def import_review(args, folder: Path, taxonomy) -> int:
    review = state.load(folder)
    if review.taxonomy_sha256 != taxonomy.sha256:
        raise FracdataError(f"{folder / state.STATE}: prepared with taxonomy v{review.taxonomy_version} "
                            f"({review.taxonomy_sha256[:12]}), not this one ({taxonomy.sha256[:12]}): pass its --taxonomy")
    decisions, rejects, read, where = _read(args, review, folder, taxonomy)
    written: list[Path] = []
    rejects_path = folder / "import.rejects.jsonl"
    if review.kind == "gold":
        if args.min_annotators < 1:
            raise FracdataError("--min-annotators must be at least 1")
        out = Path(args.out) if args.out else folder / "gold.jsonl"
        stem = out.name[:-6] if out.name.endswith(".jsonl") else out.name
        listed_path, kappa_path = out.with_name(f"{stem}.disagreements.jsonl"), out.with_name(f"{stem}.kappa.json")
        _check(review, folder, [out, listed_path, kappa_path], args.force, [args.export])
        known = {d.annotator for d in decisions}
        if args.adjudicator and args.adjudicator not in known:
            print(f"note: the adjudicator {args.adjudicator} has no annotations here (annotators: {', '.join(sorted(known))})")
        records, listed = gold.consensus(review, decisions, args.adjudicator, args.min_annotators,
                                         gold.image_path_for(folder, out))
        k = gold.kappa(decisions, args.adjudicator, taxonomy)
        k["rule"] = f"agreement of {args.min_annotators}+, else adjudicator {args.adjudicator or '(none)'}, else listed"
        _write_jsonl(out, records)
        _write_jsonl(listed_path, listed)
        _write_json(kappa_path, k)
        written += [out, listed_path, kappa_path]
        how = Counter("adjudicated" if r.note else "agreement" for r in records)
        why = Counter(x["reason"] for x in listed)
        gold.print_kappa(k)
        print(f"wrote {out}: {len(records)} gold images of {len(review.items)} ({how['agreement']} by agreement, "
              f"{how['adjudicated']} adjudicated)")
        print(f"wrote {listed_path}: {len(listed)} images left out"
              + (f" ({', '.join(f'{r}: {n}' for r, n in sorted(why.items()))})" if listed else ""))
        print(f"wrote {kappa_path}: kappa per feature and overall")
    else:
        kept_by_id, extra = labels.one_per_image(decisions, where)
        rejects += extra
        if review.kind == "audit":
            gpt_path = Path(args.labels) if args.labels else folder / review.labels
            from fracdata.label.audit import _labels, print_scores

            gpt, _ = _labels(gpt_path)
            s, recs, more = labels.audit(review, kept_by_id, gpt, taxonomy, where)
            rejects += more
            out = Path(args.out) if args.out else folder / "human_labels.jsonl"
            score_path = out.with_name("audit_score.json")
            _check(review, folder, [out, score_path], args.force, [args.export])
            if review.suspects is not None:  # not a random sample: say what it measured
                from fracdata.review.suspects import confirmed

                s["suspects"] = c = confirmed(review, kept_by_id, folder)
                pr = "n/a" if c["precision"] is None else f"{c['precision']:.3f}"
                print(f"suspect labels checked: {c['checked']}, confirmed wrong by the reviewer: {c['confirmed']} "
                      f"(precision {pr}); the scores below are over the likeliest errors, not a random sample")
            print_scores(s, f"read {where}: {len(review.items)} sampled images")
            _write_json(score_path, s)
            written += [out, score_path]
            print(f"wrote {score_path}: scores over {s['images']} images, {len(s['per_feature'])} features")
        else:
            recs, more, missing = labels.manual(review, kept_by_id, taxonomy, where)
            rejects += more
            out = Path(args.out) if args.out else folder / review.folder / "labels.jsonl"
            _check(review, folder, [out], args.force, [args.export])
            written.append(out)
            if missing:
                print(f"note: {missing} of {len(review.items)} images have no review yet")
        _write_jsonl(out, recs)
        print(f"wrote {out}: {len(recs)} human labels (labeler.kind human; the builder lets them override GPT labels)")
    _write_jsonl(rejects_path, rejects)
    written.append(rejects_path)
    counts = Counter(r.reason for r in rejects)
    print(f"read {read} annotations from {where}: {read - len(rejects)} kept, {len(rejects)} rejected"
          + (f" ({', '.join(f'{r}: {n}' for r, n in sorted(counts.items()))}; see {rejects_path})" if rejects else ""))
    state.record_written(review, folder, written)
    state.save(review, folder)
    return 0

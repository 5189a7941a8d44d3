"""The build, step by step, over records keyed by id (the CLI is fracdata/dataset/cli.py).

  read      inputs.py: {id: Candidate}, {id: Label}, {id: GoldImage}; every bad line a reject
  gold      decode the gold images (their keypoints index the crop guard); any failure is an error
  choose    per candidate: gold_paper, no_label, not_fractograph (before decoding: not worth it)
  decode    decode.py in worker processes: {id: Decoded | Failed}, ids checked against the pixels
  guard     guard.py: a gold copy, crop, tile or sibling anywhere in training fails the build
  dedup     near copies across rotations/flips (dedup.py); the human-labelled copy wins
  split     by paper and parent (split.py); rows and LlamaFactory's rules (sharegpt.py)
Output files and formats: docs/build.md, docs/formats.md.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from fracdata import __version__
from fracdata.errors import FracdataError


def build(inputs, out: Path, cfg=None, *, workers: int = 2, force: bool = False, log=print) -> dict:
    """Build the dataset into `out` (atomically) and return the build.json summary.

    One build per OUT at a time: an OS lock on `.OUT.lock` beside it (fracdata.files.exclusive);
    a second build stops with one line naming the first. The lock dies with its process.
    """
    from fracdata.dataset import outdir
    from fracdata.files import Output, check_outputs, exclusive, jsonl_of
    from fracdata.records import Reject

    # OUT is replaced whole: no input may be it, or lie inside it (a --gold OUT/x.jsonl would go with it)
    check_outputs([Output(out, "dataset folder"), Output(outdir.failed_rejects_path(out), "rejects file",
                                                         jsonl_of(Reject, "a reject"))],
                  [p for _, p in inputs.listing()], replaced_whole=True, overwrite=force, flag="--force")
    with exclusive(outdir.lock_path(out), out, "fracdata build",
                   "wait for it to finish (or give another --out)"):
        return _build_locked(inputs, out, cfg, workers=workers, force=force, log=log)


def _build_locked(inputs, out: Path, cfg, *, workers: int, force: bool, log) -> dict:
    from fracdata.answer import template_sha256
    from fracdata.dataset import outdir
    from fracdata.dataset.config import BuildConfig
    from fracdata.dataset.card import print_summary, write_card_and_summary
    from fracdata.taxonomy import load_taxonomy

    cfg = cfg or BuildConfig()
    tax = load_taxonomy(cfg.taxonomy)  # a bad --taxonomy file is a one-line FracdataError naming it
    if inputs.manual is not None and not inputs.manual.is_dir():
        raise FracdataError(f"{inputs.manual}: --manual must be a folder (images + labels.jsonl)")
    config = {**asdict(cfg), "rotations": list(cfg.rotations), "fracdata": __version__, "code_sha256": outdir.code_sha256(),
              "taxonomy_version": tax.version, "taxonomy_sha256": tax.sha256, "template_sha256": template_sha256()}
    input_hash, described = outdir.fingerprint(config, inputs.listing(), workers)
    for stale in outdir.clean_stale(out):
        log(f"removed {stale} (left by a killed build)")
    if not force and outdir.up_to_date(out, input_hash):
        log(f"up to date: {out} already holds this build (input hash {input_hash[:12]}); nothing to do (--force rebuilds)")
        return json.loads((out / "build.json").read_text())
    tmp = outdir.prepare(out)
    failed = outdir.failed_rejects_path(out)  # the rejects of a build in which nothing survived
    try:
        summary = _build_into(tmp, inputs, cfg, tax, workers, log)
        summary = {"input_hash": input_hash, "config": config, "inputs": described, **summary}
        write_card_and_summary(tmp, summary)
        outdir.swap_into_place(tmp, out)
    except NothingSurvived as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.ledger.rejects:
            n = len(e.ledger.rejects)
            e.ledger.write(failed)
            raise FracdataError(f"{e}; wrote {failed} ({n} rejects), nothing else (OUT is left as it was)") from None
        failed.unlink(missing_ok=True)
        raise FracdataError(f"{e}; nothing written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    failed.unlink(missing_ok=True)  # an earlier failed build's rejects no longer describe OUT
    print_summary(summary, out, log)
    return summary


def _scales(chosen: dict) -> tuple[float, ...]:
    """The work scales (overlap.work_factor) of the training candidates, from their headers."""
    from fracdata.dataset.overlap import work_factor
    from fracdata.images import ANY, ImageReject, inspect

    sizes = set()
    for it in chosen.values():
        try:
            sizes.add(inspect(it.path, ANY).size)
        except ImageReject:  # decoded (and rejected with its reason) later
            continue
    return tuple(sorted({work_factor(s) for s in sizes}, reverse=True))


class NothingSurvived(Exception):
    """No training image survived: the message counts why; the ledger's rejects are written beside OUT."""

    def __init__(self, message: str, ledger):
        super().__init__(message)
        self.ledger = ledger


def _read(given, tax, ledger, bounds, workers):
    """Every input -> ({id: Candidate}, {id: Label}, {id: GoldImage}, {ids any image record named: where})."""
    from fracdata.dataset import decode, inputs

    seen: dict[str, str] = {}
    items = inputs.read_manifest(given.manifest, "mined", ledger, seen)
    label_files = [(p, False) for p in given.labels]
    if given.manual is not None:
        labels_file, manifest_file = given.manual / "labels.jsonl", given.manual / "manifest.jsonl"
        if not labels_file.is_file():
            raise FracdataError(f"{labels_file}: not found; a manual collection is a folder of images plus labels.jsonl")
        if manifest_file.is_file():
            manual = inputs.read_manifest(manifest_file, "manual", ledger, seen)
        else:  # no manifest: the id of each file is its pixels' hash, computed in the pool
            manual = inputs.read_manual_files(given.manual, ledger, seen, lambda paths: decode.run_pool(
                [decode.Job(str(p), str(p), None) for p in paths], workers, bounds, "manual ids"))
        items.update(manual)
        label_files.append((labels_file, True))
    for p in given.labels:
        if not p.is_file():
            raise FracdataError(f"{p}: no such labels file")
    labels = inputs.read_labels(label_files, tax, ledger)
    gold = inputs.read_gold(given.gold, ledger)
    return items, labels, gold, seen


def _build_into(tmp: Path, given, cfg, tax, workers: int, log) -> dict:
    from fracdata import images
    from fracdata.dataset import decode, dedup, guard, inputs, lookup, regions, sharegpt, waivers
    from fracdata.dataset.split import groups as paper_groups, split_groups
    from fracdata.records import group_key

    ledger = inputs.Ledger()
    bounds = images.Bounds(cfg.min_side, cfg.max_pixels, cfg.max_aspect)
    items, labels, gold, seen = _read(given, tax, ledger, bounds, workers)
    waived = waivers.read_waivers(given.waivers)

    # choose what to decode: nothing of a gold paper, nothing unlabelled, no non-fractograph
    dois, chosen = guard.gold_dois(gold), {}
    negatives = 0
    for it in items.values():
        label, paper = labels.get(it.id), guard.gold_paper(it, dois)
        if paper:
            ledger.reject(it.origin, it.file, "gold_paper", line=it.line, id=it.id, detail=paper)
        elif label is None:
            ledger.reject(it.origin, it.file, "no_label", line=it.line, id=it.id, detail="no valid label has this id")
        elif label.negative and not cfg.keep_negatives:
            ledger.reject(it.origin, it.file, "not_fractograph", line=it.line, id=it.id,
                          detail=f"{label.kind} label at {label.file}:{label.line}: image_type '{inputs.NEGATIVE}' "
                                 "(--keep-negatives keeps it as a 'Features: none' row)")
        else:
            negatives += label.negative
            chosen[it.id] = it
    # gold: every image decoded (a failure is an error), its keypoints indexed for the guard at each
    # work scale the training images use (read from their headers: no pixel decoded twice)
    scales = _scales(chosen) if gold else ()
    gold_res = decode.run_pool([decode.Job(g.id, str(g.path), g.id, gold=True, scales=scales) for g in gold.values()],
                               workers, bounds, "gold")
    failed = [f"{gold[i].where}: {r.reason} ({gold[i].path}: {r.detail})" for i, r in gold_res.items()
              if isinstance(r, decode.Failed)]
    if failed:
        raise inputs.gold_unreadable(failed)
    index = lookup.GoldSet({i: d.keypoints for i, d in gold_res.items()}) if gold_res else None
    images_dir = tmp / "images"
    images_dir.mkdir()
    results = decode.run_pool([decode.Job(i, str(it.path), i, str(images_dir), cfg.rotations, regions=True)
                               for i, it in chosen.items()],
                              workers, bounds, "images", gold=index)
    decoded = {}
    for i, res in results.items():
        it = chosen[i]
        if isinstance(res, decode.Failed):
            ledger.reject(it.origin, it.file, res.reason, line=it.line, id=i, detail=f"{it.path}: {res.detail}")
        else:
            decoded[i] = res
    ranges = Counter(d.range_note for d in decoded.values() if d.range_note)
    if ranges:  # kept, but a person should look: a flat frame teaches nothing
        from fracdata.stretch import NOTES

        log("warning: " + "; ".join(f"{n} 16-bit/float images: {NOTES[k]}" for k, n in sorted(ranges.items())))

    used = guard.check({i: chosen[i] for i in decoded}, decoded, gold, gold_res, cfg.near_dup_distance, waived)
    for w in waivers.account(waived, used):
        if not w["waived"]:
            log(f"warning: waiver {w['where']} (gold {w['gold'][:12]}…, training {w['train'][:12]}…) matched nothing")

    # near dedup across rotations/flips; priority: a human-labelled copy, then the smaller id
    order = sorted(decoded, key=lambda i: (labels[i].kind != "human", i))
    dropped = dedup.near_duplicates({i: decoded[i].hashes for i in order}, cfg.near_dup_distance)
    for i, m in dropped.items():
        it = chosen[i]
        ledger.reject(it.origin, it.file, "near_duplicate", line=it.line, id=i,
                      detail=f"{it.path}: near copy of {m.kept} ({dedup.said(m.transform)}, phash distance {m.distance} <= {cfg.near_dup_distance})")
    kept = {i: chosen[i] for i in sorted(decoded) if i not in dropped}
    features = {i: () if labels[i].negative else labels[i].features for i in kept}

    # split by paper (and parent), seeded; rows per variant, LlamaFactory's rules checked, files written
    groups = paper_groups({i: (group_key(it.source, f"{it.origin}:{it.id}"), it.parent) for i, it in kept.items()})
    side = split_groups([(i, groups[i], list(features[i])) for i in kept], cfg.val_fraction, cfg.seed, class_order=tax.ids)
    # then images that share a region of specimen with a validation image join it (regions.py)
    side, moved = regions.separate(side, groups, {i: decoded[i].probe for i in kept},
                                   {i: decoded[i].size for i in kept}, images_dir, workers)
    train = [i for i in kept if side[i] == "train"]
    val = [i for i in kept if side[i] == "val"]
    datasets, files, referenced = sharegpt.write_datasets(tmp, {i: (kept[i].origin, decoded[i].rotated) for i in kept}, features,
                                             train, val, cfg.rotations, tax)

    # labels: kept = the label of an image in the dataset; the others say why not
    for label_id, lab in labels.items():
        if label_id not in kept:
            why = "image_rejected" if label_id in seen else "no_image"  # seen: ids any image record named
            detail = ("its image record was rejected (see its own reject)" if why == "image_rejected"
                      else "no manifest record or manual image has this id")
            ledger.reject("labels", lab.file, why, line=lab.line, id=label_id, detail=detail)
    kept_by = Counter(it.origin for it in kept.values())
    kept_by.update({"labels": len(kept), "gold": len(gold)})
    streams = {}
    for s in inputs.STREAMS:
        rej = ledger.rejected(s)
        if kept_by[s] + sum(rej.values()) != ledger.read[s]:
            raise RuntimeError(f"internal: {s} kept {kept_by[s]} + rejected {sum(rej.values())} != read {ledger.read[s]}")
        streams[s] = {"read": ledger.read[s], "kept": kept_by[s], "rejected": dict(sorted(rej.items()))}
    if not train:
        counts = "; ".join(f"{k} read {v['read']}, kept {v['kept']}" + "".join(f", {r} {n}" for r, n in v["rejected"].items())
                           for k, v in streams.items() if v["read"])
        names = ledger.unknown_names.most_common()
        unknown = (("; unknown feature names: " + ", ".join(f"{k!r} {n}" for k, n in names[:10])
                    + (f" and {len(names) - 10} more" if len(names) > 10 else "")) if names else "")
        raise NothingSurvived(f"no training image survived ({counts or 'no records read'}){unknown}", ledger)
    if not val:
        log(f"warning: the validation split is empty ({len(kept)} images, --val-fraction {cfg.val_fraction}); "
            "a recipe with eval_dataset: val will fail")
    files["rejects.jsonl"] = ledger.write(tmp / "rejects.jsonl")
    removed = Counter(r.reason for _, r in ledger.rejects)
    return {
        "streams": streams,
        "unknown_feature_names": dict(sorted(ledger.unknown_names.items())),
        "split": {**{name: {"images": len(part), "groups": len({groups[i] for i in part})} for name, part in (("train", train), ("val", val))},
                  "moved_to_train": [asdict(m) for m in moved]},
        "rows": {name: len(r) for name, r in datasets.items()},
        "images": len(referenced),
        "files": files,
        "features": sharegpt.feature_counts(datasets, features, tax),
        "licences": dict(sorted(Counter((it.source.licence if it.source else None) or "unknown" for it in kept.values()).items())),
        "gold": {"images": len(gold), "papers": len(dois), "gold_paper_removed": removed["gold_paper"],
                 "weak": sorted(i for i, d in gold_res.items() if d.weak),
                 "waivers": waivers.account(waived, used)},
        "dynamic_range_warnings": dict(sorted(ranges.items())),
        "negatives": {"kept": negatives, "rejected": removed["not_fractograph"], "keep_negatives": cfg.keep_negatives},
    }

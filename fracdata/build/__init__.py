"""`fracdata build`: validate, dedup, split, augment and render a LlamaFactory dataset.

    fracdata build                      # the embedded sample data/synthetic -> data/processed/synthetic
    fracdata build --manifest M --labels L [--labels L2] [--manual DIR] [--gold G] --out OUT --seed 0

Steps (issue 2): read and validate every record; decode every image (inputs.py, decode.py);
fail on any gold image in the inputs (dedup.py); exact and near dedup; merge labels (human
wins); split grouped by paper (split.py); rotate the training split; render rows and check
LlamaFactory's rules (sharegpt.py); write into a temp folder and swap it in (outdir.py).
Output files and formats: docs/build.md, docs/formats.md.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fracdata import __version__
from fracdata.errors import FracdataError

SAMPLE_DIR = Path("data/synthetic")
SAMPLE_OUT = Path("data/processed/synthetic")


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    val_fraction: float = 0.1  # of images, rounded; grouped by paper so the real share varies
    rotations: tuple[int, ...] = (90, 180, 270)  # degrees counter-clockwise, training split only
    min_side: int = 64
    max_pixels: int = 50_000_000
    max_aspect: float = 20.0
    near_dup_distance: int = 6  # phash bits; see dedup.py for why 6
    taxonomy: str | None = None  # None = the packaged taxonomy.yaml


@dataclass
class Inputs:
    manifest: Path
    labels: list[Path]
    manual: Path | None = None
    gold: list[Path] = field(default_factory=list)

    def listing(self) -> list[tuple[str, Path]]:
        out = [("manifest", self.manifest)] + [("labels", p) for p in self.labels]
        if self.manual:
            out.append(("manual", self.manual))
        return out + [("gold", p) for p in self.gold]


def add_arguments(p) -> None:
    p.add_argument("--manifest", type=Path, help="mined images: ManifestRecord JSONL")
    p.add_argument("--labels", type=Path, action="append", default=[], help="LabelRecord JSONL (repeatable)")
    p.add_argument("--manual", type=Path, help="manual collection: folder with labels.jsonl (human), images, optional manifest.jsonl")
    p.add_argument("--gold", type=Path, action="append", default=[], help="gold benchmark GoldRecord JSONL (repeatable); none of its images may be in training")
    p.add_argument("--out", type=Path, help=f"output folder (default with no inputs: {SAMPLE_OUT})")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share of images, 0 < f < 1 (default 0.1)")
    p.add_argument("--rotations", default="90,180,270", help="training-split rotations, subset of 90,180,270; '' for none (default 90,180,270)")
    p.add_argument("--min-side", type=int, default=64, help="reject images whose shorter side is below this (default 64 px)")
    p.add_argument("--max-pixels", type=int, default=50_000_000, help="reject images with more pixels (default 50,000,000; decompression-bomb guard)")
    p.add_argument("--max-aspect", type=float, default=20.0, help="reject images longer than this times their width (default 20)")
    p.add_argument("--near-dup-distance", type=int, default=6, help="phash Hamming distance counted as a near copy (default 6 of 64 bits)")
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")
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
    explicit = [args.manifest, args.labels, args.manual, args.gold, args.out]
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
        inputs, out = Inputs(args.manifest, list(args.labels), args.manual, list(args.gold)), args.out
    if not 0 < args.val_fraction < 1:
        raise FracdataError(f"--val-fraction {args.val_fraction}: must be between 0 and 1 (exclusive)")
    if args.workers < 1:
        raise FracdataError(f"--workers {args.workers}: must be at least 1")
    cfg = BuildConfig(args.seed, args.val_fraction, parse_rotations(args.rotations), args.min_side,
                      args.max_pixels, args.max_aspect, args.near_dup_distance, args.taxonomy)
    build(inputs, out, cfg, workers=args.workers, force=args.force)
    return 0


def build(inputs: Inputs, out: Path, cfg: BuildConfig = BuildConfig(), *, workers: int = 2,
          force: bool = False, log=print) -> dict:
    """Build the dataset into `out` (atomically) and return the build.json summary."""
    import json
    import shutil

    from fracdata.build import outdir
    from fracdata.answer import template_sha256
    from fracdata.taxonomy import load_taxonomy

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
    try:
        summary = _build_into(tmp, inputs, cfg, tax, workers, log)
        summary = {"input_hash": input_hash, "config": config, "inputs": described, **summary}
        from fracdata.build.card import write_card_and_summary

        write_card_and_summary(tmp, summary)
        outdir.swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    from fracdata.build.card import print_summary

    print_summary(summary, out, log)
    return summary


def _build_into(tmp: Path, given: Inputs, cfg: BuildConfig, tax, workers: int, log) -> dict:
    from fracdata import images
    from fracdata.build import decode, dedup, inputs, sharegpt
    from fracdata.records import dump_jsonl, sha256_file
    from fracdata.build.split import group_key, split_groups

    ledger, seen = inputs.Ledger(), {}
    items = inputs.read_manifest(given.manifest, "mined", ledger, seen)
    label_files = [(p, False) for p in given.labels]
    if given.manual is not None:
        labels_file, manifest_file = given.manual / "labels.jsonl", given.manual / "manifest.jsonl"
        if not labels_file.is_file():
            raise FracdataError(f"{labels_file}: not found; a manual collection is a folder of images plus labels.jsonl")
        items += (inputs.read_manifest(manifest_file, "manual", ledger, seen) if manifest_file.is_file()
                  else inputs.read_manual_files(given.manual, ledger, seen))
        label_files.append((labels_file, True))
    for p in given.labels:
        if not p.is_file():
            raise FracdataError(f"{p}: no such labels file")
    labels = inputs.read_labels(label_files, tax, ledger)
    gold = inputs.read_gold(given.gold, ledger)

    # 1. attach labels (no label: not worth decoding), then decode everything in `workers` processes
    labelled = []
    for it in items:
        it.label = labels.get(it.id)
        if it.label is None:
            ledger.reject(it.origin, it.file, "no_label", line=it.line, id=it.id, detail="no valid label has this id")
        else:
            it.features, it.label_kind = it.label.features, it.label.kind
            labelled.append(it)
    images_dir = tmp / "images"
    images_dir.mkdir()
    bounds = images.Bounds(cfg.min_side, cfg.max_pixels, cfg.max_aspect)
    tasks = ([(str(it.path), it.id, str(images_dir), cfg.rotations) for it in labelled]
             + [(str(g.path), g.id, None, ()) for g in gold])
    decoded, gold_ok = [], []
    results = decode.run_pool(decode.process_image, tasks, workers, bounds, "images")
    for it, res in zip(labelled + gold, results, strict=True):
        if not res["ok"]:
            ledger.reject(it.origin, it.file, res["reason"], line=it.line, id=it.id, detail=f"{it.path}: {res['detail']}")
            continue
        it.png, it.rotated, it.hashes, it.size = res["png"], res["rotated"], res["hashes"], tuple(res["size"])
        (gold_ok if it.origin == "gold" else decoded).append(it)

    # 2. a gold image (or a rotated/flipped/re-encoded copy) anywhere in the inputs fails the build
    leaks = dedup.gold_matches([g.hashes for g in gold_ok], [it.hashes for it in decoded], cfg.near_dup_distance)
    if leaks:
        listed = "; ".join(f"{decoded[m.b].id} ({decoded[m.b].file}{f':{decoded[m.b].line}' if decoded[m.b].line else ''})"
                           f" = gold {gold_ok[m.a].id} ({m.transform}, phash distance {m.distance})" for m in leaks)
        raise FracdataError(f"gold leak: {len(leaks)} training image(s) are gold benchmark images or rotated/flipped/"
                            f"re-encoded copies of them: {listed}. Remove them from the training inputs")

    # 3. exact (same pixels after normalisation) then near dedup; a human-labelled copy wins, then the smaller id
    order = sorted(decoded, key=lambda it: (it.label_kind != "human", it.id))
    first: dict[str, inputs.Item] = {}
    unique = []
    for it in order:
        if it.png in first:
            ledger.reject(it.origin, it.file, "duplicate_image", line=it.line, id=it.id,
                          detail=f"{it.path}: same pixels after normalisation as {first[it.png].id}")
        else:
            first[it.png] = it
            unique.append(it)
    dropped = dedup.near_duplicates([it.hashes for it in unique], cfg.near_dup_distance)
    for j, m in sorted(dropped.items()):
        it = unique[j]
        ledger.reject(it.origin, it.file, "near_duplicate", line=it.line, id=it.id,
                      detail=f"{it.path}: near copy of {unique[m.a].id} ({m.transform}, phash distance {m.distance} <= {cfg.near_dup_distance})")
    kept = [it for j, it in enumerate(unique) if j not in dropped]

    # 4. split by paper; 5. rotated copies (encoded in step 1) for the training split only
    side = split_groups([(it.id, group_key(it.source, f"{it.origin}:{it.id}"), it.features) for it in kept],
                        cfg.val_fraction, cfg.seed, class_order=tax.ids)
    train = sorted((it for it in kept if side[it.id] == "train"), key=lambda it: it.id)
    val = sorted((it for it in kept if side[it.id] == "val"), key=lambda it: it.id)

    # 6-8. rows per variant, LlamaFactory's rules checked, files written
    train_rows = []
    for it in train:
        train_rows.append(sharegpt.make_row(it.id, it.png, it.features, tax, "none", it.origin))
        train_rows += [sharegpt.make_row(it.id, s, it.features, tax, decode.ROTATIONS[a], it.origin)
                       for a, s in zip(cfg.rotations, it.rotated, strict=True)]
    val_rows = [sharegpt.make_row(it.id, it.png, it.features, tax, "none", it.origin) for it in val]
    datasets = {**sharegpt.variant_rows(train_rows), sharegpt.VAL_NAME: val_rows}
    files = {}
    for name, rows in datasets.items():
        file = sharegpt.VARIANTS[name][0] if name in sharegpt.VARIANTS else sharegpt.VAL_FILE
        sharegpt.check_rows(rows, tmp, file)
        files[file] = sharegpt.write_rows(rows, tmp / file)
    files["dataset_info.json"] = sharegpt.write_json(sharegpt.dataset_info(), tmp / "dataset_info.json")
    referenced = {p.removeprefix("images/") for rows in datasets.values() for r in rows for p in r["images"]}
    for f in images_dir.iterdir():  # rotated copies of validation images; dropped duplicates
        if f.name not in referenced:
            f.unlink()

    # labels: kept = the label of an image in the dataset; the others say why not
    kept_ids = {it.id for it in kept}
    for label_id, lab in labels.items():
        if label_id not in kept_ids:
            why = "image_rejected" if label_id in seen else "no_image"  # seen: ids any image record named
            detail = ("its image record was rejected (see its own reject)" if why == "image_rejected"
                      else "no manifest record or manual image has this id")
            ledger.reject("labels", lab.file, why, line=lab.line, id=label_id, detail=detail)
    kept_by = Counter(it.origin for it in kept)
    kept_by.update({"labels": len(kept), "gold": len(gold_ok)})
    streams = {}
    for s in inputs.STREAMS:
        rej = ledger.rejected(s)
        if kept_by[s] + sum(rej.values()) != ledger.read[s]:
            raise RuntimeError(f"internal: {s} kept {kept_by[s]} + rejected {sum(rej.values())} != read {ledger.read[s]}")
        streams[s] = {"read": ledger.read[s], "kept": kept_by[s], "rejected": dict(sorted(rej.items()))}
    if not train:
        counts = "; ".join(f"{k} read {v['read']}, kept {v['kept']}" + "".join(f", {r} {n}" for r, n in v["rejected"].items())
                           for k, v in streams.items() if v["read"])
        raise FracdataError(f"no training image survived ({counts or 'no records read'}); nothing written")
    if not val:
        log(f"warning: the validation split is empty ({len(kept)} images, --val-fraction {cfg.val_fraction}); "
            "a recipe with eval_dataset: val will fail")
    rejects = sorted((r for _, r in ledger.rejects), key=lambda r: (r.file, r.line or 0, r.id or "", r.reason))
    dump_jsonl(rejects, tmp / "rejects.jsonl")
    files["rejects.jsonl"] = sha256_file(tmp / "rejects.jsonl")
    return {
        "streams": streams,
        "unknown_feature_names": dict(sorted(ledger.unknown_names.items())),
        "split": {name: {"images": len(part), "groups": len({group_key(it.source, f"{it.origin}:{it.id}") for it in part})}
                  for name, part in (("train", train), ("val", val))},
        "rows": {name: len(rows) for name, rows in datasets.items()},
        "images": len(referenced),
        "files": files,
        "features": _feature_counts(datasets, tax),
        "licences": dict(sorted(Counter((it.source.licence if it.source else None) or "unknown" for it in kept).items())),
    }


def _feature_counts(datasets: dict[str, list[dict]], tax) -> dict[str, dict[str, int]]:
    """{feature id or "(none)": {dataset: rows}} read back from the rendered answers."""
    from fracdata.answer import parse_answer

    counts: dict[str, Counter] = {}
    parsed: dict[str, list[str]] = {}  # answer text -> ids; a few distinct answers, many rows
    for name, rows in datasets.items():
        for r in rows:
            answer = r["messages"][1]["content"]
            if answer not in parsed:
                parsed[answer] = parse_answer(answer, tax).labels
            for f in parsed[answer] or ["(none)"]:
                counts.setdefault(f, Counter())[name] += 1
    order = {f: i for i, f in enumerate(tax.ids + ["(none)"])}
    return {f: {name: counts[f][name] for name in datasets} for f in sorted(counts, key=order.__getitem__)}

"""`fracdata audit`: how far can the GPT labels be trusted? A person checks a stratified sample.

    fracdata audit sample --labels gpt.jsonl --manifest manifest.jsonl --n 200 --out audit.csv
    (a person fills the human_features column: taxonomy ids or names separated by ";", or "none")
    fracdata audit score --sample audit.csv --labels gpt.jsonl [--out audit_score.json]

The sample is blind by default (the GPT answer is not in the CSV, so it cannot anchor the
reviewer; --show-gpt adds it). Strata are the group of an image's first GPT feature (taxonomy
order) or "none", so rare failure modes are not drowned by the common dimple images: each
stratum gets its share of N by largest remainder, at least one image while N allows.
Score compares feature sets per image: per feature, agreement (share of images where both say
the same) and Cohen's kappa; overall, the share of GPT features the reviewer confirmed
(precision), the share of the reviewer's features GPT found (recall), exact-set agreement and
the agreement over all image x feature decisions.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import Counter
from pathlib import Path

from fracdata import flags
from fracdata.errors import FracdataError
from fracdata.files import atomic_path, atomic_write_bytes
from fracdata.records import LabelRecord, ManifestRecord, Reject, read_jsonl
from fracdata.taxonomy import load_taxonomy
from fracdata.untrusted import escape

COLUMNS = ["id", "image", "caption", "human_features", "notes"]


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = sub.add_parser("sample", help="write a stratified sample of labelled images as a CSV to fill in")
    s.add_argument("--labels", required=True, help="labels JSONL (from fracdata label)")
    s.add_argument("--manifest", required=True, help="the manifest the labels came from (images, captions)")
    s.add_argument("--n", type=flags.count, required=True, help="images in the sample")
    s.add_argument("--out", required=True, help="CSV to write")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--show-gpt", action="store_true", help="add a gpt_features column (not blind)")
    s.add_argument("--taxonomy")
    c = sub.add_parser("score", help="agreement and Cohen's kappa between a filled sample and the labels")
    c.add_argument("--sample", required=True, help="the CSV a person filled in")
    c.add_argument("--labels", required=True)
    c.add_argument("--out", help="also write the scores as JSON here")
    c.add_argument("--taxonomy")


def _labels(path: Path) -> tuple[dict[str, LabelRecord], list[Reject]]:
    if not path.is_file():
        raise FracdataError(f"{path}: labels file not found")
    labels, rejects = {}, []
    for _, rec in read_jsonl(path, LabelRecord, "audit"):
        if isinstance(rec, Reject):
            rejects.append(rec)
        else:
            labels.setdefault(rec.id, rec)
    return labels, rejects


def stratum(rec: LabelRecord, taxonomy) -> str:
    known = [f for f in rec.features if f in taxonomy.by_id]
    return taxonomy.by_id[taxonomy.sort(known)[0]].group if known else "none"


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Largest-remainder shares of n, at least 1 per non-empty stratum while n allows, capped by size.

    sizes {a: 80, b: 15, c: 5}, n=10 -> quotas 8, 1.5, 0.5 -> floors 8, 1, 0 -> c gets its
    minimum 1 -> 10 used -> {a: 8, b: 1, c: 1}.
    """
    total = sum(sizes.values())
    n = min(n, total)
    quota = {k: n * v / total for k, v in sizes.items()}
    take = {k: min(sizes[k], int(q)) for k, q in quota.items()}
    for k in sorted(sizes, key=lambda k: sizes[k]):  # smallest strata first get their minimum of one
        if take[k] == 0 and sizes[k] > 0 and sum(take.values()) < n:
            take[k] = 1
    while sum(take.values()) < n:  # then largest remainders, ties by name for determinism
        k = max((k for k in sizes if take[k] < sizes[k]), key=lambda k: (quota[k] - take[k], k))
        take[k] += 1
    while sum(take.values()) > n:  # minimums overshot: shave the largest strata
        k = max(take, key=lambda k: (take[k] - quota[k], k))
        take[k] -= 1
    return take


def read_sample_inputs(labels_path: Path, manifest: Path):
    """(labels by id, rejected label lines, manifest records by id); every labelled id must be in the manifest."""
    labels, bad = _labels(labels_path)
    if not manifest.is_file():
        raise FracdataError(f"{manifest}: manifest not found")
    images = {}
    for _, rec in read_jsonl(manifest, ManifestRecord, "audit"):
        if isinstance(rec, ManifestRecord):
            images.setdefault(rec.id, rec)
    missing = [i for i in labels if i not in images]
    if missing:
        raise FracdataError(f"{labels_path}: {len(missing)} labelled ids are not in {manifest} "
                            f"(first {missing[0][:12]}): pass the manifest the labels came from")
    return labels, bad, images


def draw_sample(labels: dict[str, LabelRecord], n: int, seed: int, taxonomy):
    """(chosen ids sorted, strata {name: ids}, take {name: count}): the stratified sample of n labels.

    Shared by `fracdata audit sample` (a CSV) and `fracdata review audit` (a Label Studio project),
    so both draw the same images for the same labels, N and seed.
    """
    if n < 1:
        raise FracdataError("--n must be at least 1")
    strata: dict[str, list[str]] = {}
    for i in sorted(labels):  # sorted ids + seeded RNG: the same sample on every machine
        strata.setdefault(stratum(labels[i], taxonomy), []).append(i)
    take = allocate({k: len(v) for k, v in strata.items()}, n)
    rng = random.Random(seed)
    chosen = sorted((i for k in sorted(strata) for i in rng.sample(strata[k], take[k])))
    return chosen, strata, take


def sample(args) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    manifest = Path(args.manifest)
    labels, bad, images = read_sample_inputs(Path(args.labels), manifest)
    chosen, strata, take = draw_sample(labels, args.n, args.seed, taxonomy)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = COLUMNS + (["gpt_features"] if args.show_gpt else [])
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for i in chosen:
            m = images[i]
            row = {"id": i, "image": os.path.relpath((manifest.parent / m.image).resolve(), out.parent.resolve()),
                   "caption": m.caption, "human_features": "", "notes": ""}
            if args.show_gpt:
                row["gpt_features"] = "; ".join(labels[i].features)
            w.writerow(row)
    print(f"read {args.labels}: {len(labels)} labelled images, {len(bad)} rejected lines")
    print(f"wrote {out}: {len(chosen)} images from {len(strata)} strata ("
          + ", ".join(f"{k} {take[k]}/{len(strata[k])}" for k in sorted(strata)) + ")"
          + ("" if args.show_gpt else "; blind: fill human_features with ids or names separated by ';' or 'none'"))
    return 0


def score_sets(pairs: list[tuple[set[str], set[str]]], taxonomy) -> dict:
    """pairs = [(gpt features, human features)] per image -> the scores (see module docstring)."""
    from fracdata.agreement import cohen_kappa

    n = len(pairs)
    gpt_total, human_total = sum(len(g) for g, _ in pairs), sum(len(h) for _, h in pairs)
    both = sum(len(g & h) for g, h in pairs)
    used = taxonomy.sort(set().union(*[g | h for g, h in pairs])) if pairs else []
    per_feature = {}
    for fid in used:
        a = [int(fid in g) for g, _ in pairs]
        b = [int(fid in h) for _, h in pairs]
        per_feature[fid] = {"gpt": sum(a), "human": sum(b), "both": sum(x & y for x, y in zip(a, b)),
                            "agreement": sum(x == y for x, y in zip(a, b)) / n, "kappa": cohen_kappa(a, b)}
    decisions = n * len(taxonomy.ids)
    disagree = sum(len(g ^ h) for g, h in pairs)
    return {"images": n, "gpt_features": gpt_total, "human_features": human_total, "confirmed": both,
            "precision": both / gpt_total if gpt_total else None, "recall": both / human_total if human_total else None,
            "exact_match": sum(g == h for g, h in pairs) / n if n else None,
            "decision_agreement": 1 - disagree / decisions if decisions else None, "per_feature": per_feature}


def score(args) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    labels, _ = _labels(Path(args.labels))
    path = Path(args.sample)
    if not path.is_file():
        raise FracdataError(f"{path}: sample CSV not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            reader = csv.DictReader(f)
            if not {"id", "human_features"} <= set(reader.fieldnames or []):
                raise FracdataError(f"{path}: needs columns id and human_features (got {reader.fieldnames})")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise FracdataError(f"{path}: not UTF-8 (byte {e.start}): save the sheet as UTF-8 CSV") from None
    except csv.Error as e:  # a NUL byte, a field larger than the csv module allows
        raise FracdataError(f"{path}: not a readable CSV ({e})") from None
    pairs, skipped = [], Counter()
    for lineno, row in enumerate(rows, 2):
        text = (row["human_features"] or "").strip()
        if not text:
            skipped["not_reviewed"] += 1
            continue
        if row["id"] not in labels:
            raise FracdataError(f"{path}:{lineno}: id {escape(str(row['id'])[:12])!r}... is not in {args.labels}")
        terms = [] if text.lower() == "none" else [t for t in text.replace(",", ";").split(";") if t.strip()]
        ids, unknown = taxonomy.normalize_all(t.strip() for t in terms)
        if unknown:
            raise FracdataError(f"{path}:{lineno}: unknown feature {unknown[0]!r} in human_features "
                                "(use taxonomy ids or names: fracdata taxonomy)")
        pairs.append((set(labels[row["id"]].features), set(ids)))
    if not pairs:
        raise FracdataError(f"{path}: no reviewed rows (fill human_features; 'none' for no feature)")
    s = score_sets(pairs, taxonomy)
    s["rows"], s["skipped"] = len(rows), dict(skipped)
    print_scores(s, f"read {path}: {len(rows)} rows")
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(s, indent=1, sort_keys=True) + "\n").encode())
        print(f"wrote {args.out}: scores over {len(pairs)} images, {len(s['per_feature'])} features")
    return 0


def print_scores(s: dict, what: str) -> None:
    """The score summary and per-feature table (also printed by `fracdata review import` for audits)."""
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    skipped = s["skipped"]
    print(f"{what}, {s['images']} reviewed, {sum(skipped.values())} skipped "
          f"({', '.join(f'{k}: {v}' for k, v in skipped.items()) or 'none'})")
    print(f"GPT features confirmed by the reviewer: {s['confirmed']}/{s['gpt_features']} = {pct(s['precision'])}; "
          f"reviewer's features GPT found: {s['confirmed']}/{s['human_features']} = {pct(s['recall'])}")
    print(f"exact feature set: {pct(s['exact_match'])}; image x feature decisions: {pct(s['decision_agreement'])}")
    print(f"{'feature':24s} {'gpt':>4s} {'human':>5s} {'both':>4s} {'agree':>7s} {'kappa':>6s}")
    for fid, r in s["per_feature"].items():
        k = "n/a" if r["kappa"] is None else f"{r['kappa']:.3f}"
        print(f"{fid:24s} {r['gpt']:4d} {r['human']:5d} {r['both']:4d} {pct(r['agreement']):>7s} {k:>6s}")


def run(args) -> int:
    return sample(args) if args.action == "sample" else score(args)

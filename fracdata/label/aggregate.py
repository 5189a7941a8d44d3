"""`fracdata labels aggregate`: several labellers' files -> one labels file, per feature, with each labeller's rates.

    fracdata labels aggregate --labels gpt.jsonl gemini.jsonl qwen.jsonl --out agg.jsonl [--audit human.jsonl]
                              [--method dawid-skene|majority]

Each feature is a yes/no question per image, answered by every labeller that labelled the image;
Dawid-Skene (dawid_skene.py) estimates the truth and each labeller's sensitivity and specificity
from the answers alone; the majority vote is the baseline (--method majority, and always shown
beside it). "not a fracture surface" (image_type) is aggregated as one more yes/no question.
Writes:
  OUT                      LabelRecords, labeler {kind: aggregate, model: dawid-skene|majority,
                           sources: the labellers}: a feature is kept when its posterior is >= 0.5;
                           `fracdata build --labels OUT` takes it like any labels file
  <stem>.posteriors.jsonl  {"id", "posterior": {feature: P}} (P > 0.001), for ranking or thresholds
  <stem>.labellers.json    per feature: prior, rounds, each labeller's estimated sensitivity and
                           specificity, the same measured on the --audit images (human labels) when
                           given, the aggregate's agreement with them, and error correlations
  <stem>.rejects.jsonl     input lines it could not use, with the reason
A labeller is named by its files' labeler.model (else the file name). Pairs of labellers whose
errors correlate within a true class (phi >= 0.2, at least 5 errors each there) get a warning: the
model assumes they err independently, and two labellers that share a mistake outvote a third
that is right. Output order: the first file's ids, then the ids only later files have.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError

NEGATIVE = "not a fracture surface"
NOT_FRACTURE = "(not a fracture surface)"  # the pseudo-feature for image_type
WARN_PHI, WARN_MIN_ERRORS = 0.2, 5
MIN_AUDITED = 10  # audited images of a class before a measured rate is compared with the estimate


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("aggregate", help="combine several labellers per feature: Dawid-Skene (majority vote as baseline)")
    a.add_argument("--labels", nargs="+", required=True, metavar="FILE", help="labels JSONL, one per labeller (2 or more)")
    a.add_argument("--out", required=True, help="aggregated labels JSONL to write")
    a.add_argument("--method", choices=["dawid-skene", "majority"], default="dawid-skene")
    a.add_argument("--audit", help="human labels (e.g. fracdata review import's human_labels.jsonl): check the "
                                   "estimated rates against them")
    a.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")


def _read(path: Path, tax, stage: str = "aggregate"):
    """({id: frozenset of answers}, labeller name, rejects); answers are taxonomy ids + NOT_FRACTURE."""
    from fracdata.records import LabelRecord, Reject, read_jsonl

    if not path.is_file():
        raise FracdataError(f"{path}: labels file not found")
    out, first, models, rejects = {}, {}, Counter(), []
    for lineno, rec in read_jsonl(path, LabelRecord, stage):
        if isinstance(rec, Reject):
            rejects.append(rec)
            continue
        if rec.id in first:
            rejects.append(Reject(stage=stage, file=str(path), line=lineno, id=rec.id, reason="duplicate_label",
                                  detail=f"this file labels the id on line {first[rec.id]} already (the first wins)"))
            continue
        first[rec.id] = lineno
        ids, unknown = tax.normalize_all(rec.features)
        if unknown:
            rejects.append(Reject(stage=stage, file=str(path), line=lineno, id=rec.id, reason="unknown_feature",
                                  detail=f"unknown feature {unknown[0]!r} (taxonomy v{tax.version}): this labeller's "
                                         "answer for the image is left out"))
            continue
        negative = (rec.image_type or "").strip().lower() == NEGATIVE
        out[rec.id] = frozenset(ids) | ({NOT_FRACTURE} if negative else set())
        models[rec.labeler.model or ""] += 1
    name = models.most_common(1)[0][0] if models and models.most_common(1)[0][0] else path.stem
    return out, name, rejects


def run(args) -> int:
    import numpy as np

    from fracdata.files import atomic_write_bytes
    from fracdata.label import dawid_skene as ds
    from fracdata.records import Labeler, LabelRecord, dump_jsonl, sha256_file
    from fracdata.taxonomy import load_taxonomy

    tax = load_taxonomy(args.taxonomy)
    paths = [Path(p) for p in args.labels]
    if len(paths) < 2:
        raise FracdataError("--labels needs two or more files (one per labeller) to aggregate")
    out = Path(args.out)
    if out.resolve() in {p.resolve() for p in paths} or (args.audit and out.resolve() == Path(args.audit).resolve()):
        raise FracdataError(f"{out}: --out is one of the inputs; write the aggregate to another file")
    answers, names, rejects = [], [], []
    for p in paths:
        a, name, bad = _read(p, tax)
        while name in names:  # two files of one model: tell them apart by file name
            name = f"{name}:{p.stem}"
        answers.append(a)
        names.append(name)
        rejects += bad
    ids = list(dict.fromkeys(i for a in answers for i in a))  # the first file's order, then the new ids of the next
    if not ids:
        raise FracdataError(f"no usable label in {', '.join(map(str, paths))}")
    used = set().union(*(s for a in answers for s in a.values()))
    features = [f for f in tax.ids if f in used] + ([NOT_FRACTURE] if NOT_FRACTURE in used else [])
    M = np.array([[i in a for a in answers] for i in ids], dtype=float)
    audit = _read(Path(args.audit), tax, "aggregate")[0] if args.audit else {}
    audit_mask = np.array([i in audit for i in ids])
    report = {"labellers": names, "files": {n: {"path": str(p), "sha256": sha256_file(p), "images": len(a)}
                                            for n, p, a in zip(names, paths, answers)},
              "method": args.method, "images": len(ids), "audit": ({"path": args.audit, "images": int(audit_mask.sum())}
                                                                   if args.audit else None),
              "features": {}, "warnings": []}
    chosen = np.zeros((len(ids), len(features)), bool)
    post = np.zeros((len(ids), len(features)))
    for j, f in enumerate(features):
        Y = np.array([[f in a.get(i, ()) for a in answers] for i in ids], dtype=float)
        T, pi, se, sp, rounds = ds.dawid_skene(Y, M)
        vote = ds.majority(Y, M)
        post[:, j] = T if args.method == "dawid-skene" else vote
        chosen[:, j] = post[:, j] > 0.5 if args.method == "majority" else post[:, j] >= 0.5
        truth = np.array([f in audit.get(i, ()) for i in ids]) if args.audit else chosen[:, j]
        ref = audit_mask if args.audit else np.ones(len(ids), bool)
        entry = {"prior": pi, "rounds": rounds, "majority_differs": int(((vote > 0.5) != (T >= 0.5)).sum()),
                 "labellers": {}}
        for k, n in enumerate(names):
            row = {"sensitivity": float(se[k]), "specificity": float(sp[k])}
            if args.audit:
                a_se, a_sp, npos, nneg = ds.rates(Y[:, k], truth, M[:, k].astype(bool) & audit_mask)
                row["audit"] = {"sensitivity": a_se, "specificity": a_sp, "positives": npos, "negatives": nneg}
            entry["labellers"][n] = row
        if args.audit:
            se_a, sp_a, npos, nneg = ds.rates(chosen[:, j], truth, audit_mask)
            entry["aggregate_vs_audit"] = {"sensitivity": se_a, "specificity": sp_a, "positives": npos, "negatives": nneg}
        entry["correlation"] = []
        for (a, b, cls), (phi, n_both, ea, eb) in ds.error_correlation(Y, M, truth, ref).items():
            entry["correlation"].append({"a": names[a], "b": names[b], "class": cls, "phi": phi, "items": n_both,
                                         "errors": [ea, eb]})
            if phi is not None and phi >= WARN_PHI and min(ea, eb) >= WARN_MIN_ERRORS:
                report["warnings"].append(
                    f"{f}: the errors of {names[a]} and {names[b]} are correlated (phi {phi:.2f} over the {n_both} "
                    f"{cls} of {'the audit' if args.audit else 'the aggregate'}; {ea} and {eb} errors): Dawid-Skene "
                    "assumes independent labellers, so their shared mistakes can outvote the others")
        report["features"][f] = entry
    method = args.method
    lab = Labeler(kind="aggregate", model=method, taxonomy_version=tax.version, sources=names)
    nf = features.index(NOT_FRACTURE) if NOT_FRACTURE in features else None
    records = []
    for i, iid in enumerate(ids):
        feats = [f for j, f in enumerate(features) if chosen[i, j] and f != NOT_FRACTURE]
        negative = nf is not None and chosen[i, nf]
        records.append(LabelRecord(id=iid, features=tax.sort(feats), labeler=lab, image_type=NEGATIVE if negative else None))
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    side = {k: Path(f"{stem}.{k}") for k in ("posteriors.jsonl", "labellers.json", "rejects.jsonl")}
    out.parent.mkdir(parents=True, exist_ok=True)
    n = dump_jsonl(records, out)
    dump_jsonl([{"id": iid, "posterior": {f: round(float(post[i, j]), 6) for j, f in enumerate(features) if post[i, j] > 1e-3}}
                for i, iid in enumerate(ids)], side["posteriors.jsonl"])
    atomic_write_bytes(side["labellers.json"], (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    dump_jsonl(rejects, side["rejects.jsonl"])
    _print(report, names, features, args.audit)
    counts = Counter(r.reason for r in rejects)
    print(f"read {len(paths)} labellers ({', '.join(f'{nm} {len(a)}' for nm, a in zip(names, answers))} images); "
          f"{len(rejects)} lines rejected" + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})" if rejects else ""))
    print(f"wrote {out}: {n} labels ({method}, labeler kind aggregate); {side['posteriors.jsonl']}; "
          f"{side['labellers.json']}; {side['rejects.jsonl']}")
    for w in report["warnings"]:
        print(f"warning: {w}")
    return 0


def _print(report: dict, names: list[str], features: list[str], audit: str | None) -> None:
    pct = lambda x: "  n/a" if x is None else f"{x:5.3f}"
    print(f"estimated sensitivity / specificity per labeller (Dawid-Skene)"
          + (" ; measured on the audit images in brackets" if audit else ""))
    print(f"{'feature':26s} {'prior':>6s} " + " ".join(f"{n[:24]:>{30 if audit else 14}s}" for n in names))
    for f in features:
        e = report["features"][f]
        cells = []
        for n in names:
            r = e["labellers"][n]
            cell = f"{pct(r['sensitivity'])}/{pct(r['specificity'])}"
            if audit:
                a = r["audit"]
                cell += f" [{pct(a['sensitivity'])}/{pct(a['specificity'])}]"
            cells.append(f"{cell:>{30 if audit else 14}s}")
        print(f"{f:26s} {e['prior']:6.3f} " + " ".join(cells))
    if audit:  # how far the estimates are from what the audit measured, where it measured enough
        for n in names:
            gaps = [(abs(r["sensitivity"] - a["sensitivity"]), f, "sensitivity") for f in features
                    for r, a in [(report["features"][f]["labellers"][n], report["features"][f]["labellers"][n]["audit"])]
                    if a["sensitivity"] is not None and a["positives"] >= MIN_AUDITED]
            gaps += [(abs(r["specificity"] - a["specificity"]), f, "specificity") for f in features
                     for r, a in [(report["features"][f]["labellers"][n], report["features"][f]["labellers"][n]["audit"])]
                     if a["specificity"] is not None and a["negatives"] >= MIN_AUDITED]
            if gaps:
                g, f, what = max(gaps)
                print(f"{n}: estimates vs audit over {len(gaps)} rates with >= {MIN_AUDITED} audited images: largest gap "
                      f"{g:.3f} ({what} of {f})")

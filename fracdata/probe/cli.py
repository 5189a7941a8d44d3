"""`fracdata probe`: frozen-encoder embeddings -> per-feature out-of-fold probabilities -> suspect labels.

    fracdata probe --manifest M --labels L --out DIR [--encoder CHECKPOINT] [--folds 5] [--seed 0]

Writes under DIR:
  probabilities.jsonl  {"id", "probabilities": {feature: P}} per image, out of fold (fit.py)
  suspects.jsonl       {"id", "feature", "given", "probability", "score"}, likeliest errors first
                       (confident learning, suspects.py); `fracdata review audit --suspects` reads it
  probe.json           the run: inputs (sha256), encoder identity, folds, per feature the given
                       count, out-of-fold AUC against the given labels, thresholds, suspects, or why
                       it was left out
  rejects.jsonl        the lines and images it could not use, with the reason
Embeddings are cached by (encoder, image id) in --cache (default DIR/embeddings.sqlite), so a
rerun, or a run over other labels of the same images, embeds nothing again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_ENCODER = "Qwen/Qwen3-VL-32B-Instruct"  # the paper recipe's base model: its own vision tower


def add_arguments(p) -> None:
    p.add_argument("--manifest", required=True, help="manifest JSONL of the labelled images (ManifestRecord per line)")
    p.add_argument("--labels", required=True, help="the labels to check (LabelRecord JSONL: a teacher's, an aggregate)")
    p.add_argument("--out", required=True, help="folder for probabilities.jsonl, suspects.jsonl, probe.json, rejects.jsonl")
    p.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help=f"checkpoint folder (or hub id already in the local HF cache) whose vision tower embeds the "
                        f"images (default {DEFAULT_ENCODER}; never downloaded)")
    p.add_argument("--cache", help="embedding cache (default DIR/embeddings.sqlite)")
    p.add_argument("--folds", type=int, default=5, help="grouped folds (by paper) for out-of-fold probabilities (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 penalty of the logistic regression (default 1)")
    p.add_argument("--max-pixels", type=int, default=768 * 768, help="image_max_pixels, as the training recipe")
    p.add_argument("--min-pixels", type=int, default=32 * 32, help="image_min_pixels, as the training recipe")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")


def run(args) -> int:
    import numpy as np

    from fracdata.errors import FracdataError
    from fracdata.files import atomic_write_bytes, exclusive
    from fracdata.inference.local import local_folder
    from fracdata.probe import embed, fit, inputs
    from fracdata.probe.suspects import find_suspects
    from fracdata.records import Reject, dump_jsonl, sha256_file
    from fracdata.taxonomy import load_taxonomy

    if args.folds < 2:
        raise FracdataError(f"--folds {args.folds}: needs at least 2 (out-of-fold means a held-out fold)")
    if args.c <= 0 or args.batch_size < 1:
        raise FracdataError("--c must be > 0 and --batch-size >= 1")
    tax = load_taxonomy(args.taxonomy)
    manifest, labels, out = Path(args.manifest), Path(args.labels), Path(args.out)
    items, rejects, read = inputs.read_inputs(manifest, labels, tax)
    encoder = local_folder(args.encoder, "encoder", "probe")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out / ".probe.lock", out, "fracdata probe", "wait for it to finish"):
        cache = embed.Cache(args.cache or out / "embeddings.sqlite")
        try:
            vecs, identity, failed = embed.embed_all({it.id: it.path for it in items}, encoder, cache,
                                                     args.max_pixels, args.min_pixels, args.batch_size)
        finally:
            cache.close()
        for i, (reason, detail) in failed.items():
            rejects.append(Reject(stage=inputs.STAGE, file=str(manifest), id=i, reason=reason, detail=detail))
        items = [it for it in items if it.id in vecs]
        if not items:
            raise FracdataError(f"{manifest}: no labelled image could be probed ({dict(Counter(r.reason for r in rejects))})")
        features = [f for f in tax.ids if any(f in it.features for it in items)]
        X = np.stack([vecs[it.id] for it in items])
        Y = np.array([[f in it.features for f in features] for it in items], dtype=int)
        ids, groups = [it.id for it in items], [it.group for it in items]
        P, skipped = fit.out_of_fold(X, Y, features, groups, args.folds, args.seed, args.c)
        suspects, summary = find_suspects(ids, features, Y, P)
        per_feature = {}
        for j, f in enumerate(features):
            if f in skipped:
                per_feature[f] = {"given": int(Y[:, j].sum()), "skipped": skipped[f]}
            else:
                per_feature[f] = {**summary[f], "auc": fit.auc(Y[:, j], P[:, j])}
        probs = [{"id": i, "probabilities": {f: round(float(P[k, j]), 6) for j, f in enumerate(features) if f not in skipped}}
                 for k, i in enumerate(ids)]
        n_p = dump_jsonl(probs, out / "probabilities.jsonl")
        n_s = dump_jsonl([s.record() for s in suspects], out / "suspects.jsonl")
        dump_jsonl(rejects, out / "rejects.jsonl")
        reasons = dict(sorted(Counter(r.reason for r in rejects).items()))
        info = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "inputs": {"manifest": str(manifest), "manifest_sha256": sha256_file(manifest), "labels": str(labels),
                           "labels_sha256": sha256_file(labels)},
                "encoder": {"path": str(encoder), "identity": identity, "pooling": embed.POOLING,
                            "max_pixels": args.max_pixels, "min_pixels": args.min_pixels},
                "model": {"kind": "logistic regression per feature", "C": args.c, "folds": min(args.folds, len(set(groups))),
                          "grouped_by": "paper (fracdata.records.group_key)", "seed": args.seed},
                "method": "confident learning (Northcutt et al., JAIR 2021), off-diagonals of the confident joint",
                "read": read, "images": len(ids), "papers": len(set(groups)), "rejected": reasons,
                "suspects": n_s, "per_feature": per_feature}
        atomic_write_bytes(out / "probe.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    print(f"read {manifest} ({read['manifest']} lines) and {labels} ({read['labels']} lines): {len(ids)} images probed "
          f"in {len(set(groups))} papers, {len(rejects)} rejected" + (f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())})" if reasons else ""))
    print(f"{'feature':22s} {'given':>6s} {'AUC':>6s} {'t0':>6s} {'t1':>6s} {'suspects':>9s}")
    for f, v in per_feature.items():
        if "skipped" in v:
            print(f"{f:22s} {v['given']:6d}  left out: {v['skipped']}")
        else:
            a = "n/a" if v["auc"] is None else f"{v['auc']:.3f}"
            t0 = "n/a" if v["t0"] is None else f"{v['t0']:.3f}"
            t1 = "n/a" if v["t1"] is None else f"{v['t1']:.3f}"
            print(f"{f:22s} {v['given']:6d} {a:>6s} {t0:>6s} {t1:>6s} {v['flagged_given_0'] + v['flagged_given_1']:9d}")
    print(f"wrote {out / 'probabilities.jsonl'}: {n_p} images x {len(features) - len(skipped)} features, out of fold")
    print(f"wrote {out / 'suspects.jsonl'}: {n_s} suspect labels, likeliest errors first "
          f"(next: fracdata review audit --suspects {out / 'suspects.jsonl'} --labels {labels} --manifest {manifest} --n N --out DIR)")
    print(f"wrote {out / 'probe.json'} and {out / 'rejects.jsonl'} ({len(rejects)} rejects)")
    return 0

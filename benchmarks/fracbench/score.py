"""`fracbench score`: DIR/predictions/*.jsonl + gold -> DIR/metrics.json (the stable contract).

{"headline": "strict_jaccard",          # the metric the report leads with (fracbench/headline.py)
 "models": {NAME: {"micro": {"precision": {"value", "ci_low", "ci_high"}, "recall", "f1"},
                   "macro": {...}, "exact_match": {...}, "jaccard": {...},
                   "strict": {"micro", "macro", "exact_match", "jaccard"},   # failed/unparsed = wrong
                   "coverage": {"n", "answered", "failed", "unparsed"},
                   "abstention": {"featured", "none_on_featured", "gold_none", "features_on_none"},
                   "calibration": {"available", "reason", "raw", "calibrated", "calibration"},  # calibration.py
                   "per_feature": {id: {"precision", "recall", "f1", "support", "predicted", "tp"}},
                   "n", "labels_predicted", "status": {status: count}, "unknown_terms": {term: count},
                   "kind", "control"}},
 "paired": [{"a", "b", "n", "metrics": {"strict_jaccard" (first), "micro_f1": {"diff", "ci_low", "ci_high", "p_value", "p_holm"}, ...}}],
 "annotators": [{"a", "b", "n_images", "n_features", "kappa", "exact_agreement"}],
 "provenance": {"gold", "gold_sha256", "task", "git", "date", "limit", "not_a_score", "models",
                "resampling": {"unit", "clusters", "images", "without_source", "with_parent"}, ...}}
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes
from fracdata.provenance import git_state, host


def add_arguments(p) -> None:
    p.add_argument("--out", default="reports/bench", help="folder with predictions/ (default reports/bench); metrics.json goes here")
    p.add_argument("--models", nargs="+", metavar="NAME", help="models to score (default: every DIR/predictions/*.jsonl)")
    p.add_argument("--gold", help="gold JSONL (default: the one the predictions were made on)")
    p.add_argument("--task", help="task name or YAML for the metric settings (default: the predictions' task file)")
    p.add_argument("--seed", type=int, help="bootstrap/permutation seed (default: the task's)")
    p.add_argument("--inherit", action="append", metavar="STUDENT=TEACHER",
                   help="what STUDENT inherited from TEACHER's labels (a `labels` entry), per feature (repeatable; "
                        "fracbench/inheritance.py)")


# Coverage: `answered` = a parsed answer (features or "none"); `failed` = no answer text (a failed
# call, or an empty one); `unparsed` = text in which no term maps to a taxonomy id. They add up to n.
COVERAGE = {"ok": "answered", "none": "answered", "failed": "failed", "empty": "failed", "unparsed": "unparsed"}


def coverage(statuses: dict[str, int]) -> dict[str, int]:
    out = {"n": sum(statuses.values()), "answered": 0, "failed": 0, "unparsed": 0}
    for status, count in statuses.items():
        out[COVERAGE[status]] += count
    return out


def resampling(items) -> tuple[dict, object]:
    """The bootstrap unit: images that share a source paper or a parent micrograph
    (`source.parent`: tiles of one field) are one cluster, resampled and swapped together, as the
    training split groups them (fracdata.dataset.split.groups); an image with neither is its own
    cluster; with neither anywhere, images. Returns (provenance entry, cluster index or None)."""
    from fracbench.metrics import cluster_index
    from fracdata.dataset.split import groups

    without = sum(it.paper is None for it in items)
    parents = sum(it.parent is not None for it in items)
    entry = {"clusters": len(items), "images": len(items), "without_source": without, "with_parent": parents}
    if without == len(items) and not parents:
        return {"unit": "image", **entry}, None
    group = groups({it.id: (it.paper or f"image:{it.id}", it.parent) for it in items})
    clusters = cluster_index([group[it.id] for it in items])
    unit = "source paper" if not parents else "parent image" if without == len(items) else "source paper or parent image"
    return {**entry, "unit": unit, "clusters": int(clusters.max()) + 1}, clusters


def score_dir(out_dir, models: list[str] | None = None, gold: str | None = None, task_ref: str | None = None,
              seed: int | None = None, log=print, inherit: list[str] | None = None) -> dict:
    from fracbench import __version__, calibration
    from fracdata.inference.task import load_task
    from fracbench.data import STATUSES, list_models, load_gold, read_meta, read_predictions
    from fracbench.headline import KEY as HEADLINE, abstention
    from fracbench.metrics import bootstrap_weights, holm, paired, score
    from fracdata.agreement import annotator_agreement, indicator
    from fracdata.answer import template_sha256
    from fracdata.records import sha256_file
    from fracdata.taxonomy import load_taxonomy

    out_dir = Path(out_dir)
    from fracbench.inheritance import inheritance, parse_pairs

    names = models or list_models(out_dir)
    pairs_inherit = parse_pairs(inherit)
    missing = [n for pair in pairs_inherit for n in pair if n not in names]
    if missing:
        raise FracdataError(f"--inherit: {missing[0]!r} is not one of the models scored here ({', '.join(names)})")
    if not names:
        raise FracdataError(f"{out_dir}/predictions: no predictions to score: run `fracbench infer` first")
    metas = {n: read_meta(out_dir / "predictions" / f"{n}.meta.json")
             for n in names if (out_dir / "predictions" / f"{n}.meta.json").is_file()}
    first = metas[names[0]] if names[0] in metas else None
    if first is None:
        raise FracdataError(f"{out_dir}/predictions/{names[0]}.meta.json not found: run `fracbench infer --model {names[0]}`")
    for n, m in metas.items():  # every model must have answered the same task on the same items
        for what, get in (("task hash", lambda x: x["task"]["hash"]), ("gold sha256", lambda x: x["gold"]["sha256"]),
                          ("limit", lambda x: x["limit"])):
            if get(m) != get(first):
                raise FracdataError(f"{out_dir}/predictions/{n}.meta.json: {what} differs from {names[0]}'s "
                                    f"({get(m)} vs {get(first)}): re-run infer for both with the same task/gold/limit")
    task, task_path = load_task(task_ref or first["task"]["file"])
    seed = task.metrics.seed if seed is None else seed
    tax = load_taxonomy()
    gold_path = Path(gold or first["gold"]["path"])
    # Scoring reads labels only (predictions are keyed by image id, checked against the images by
    # infer), so the images need not be re-hashed: re-annotated gold re-scores without re-infer.
    items = load_gold(gold_path, tax, limit=first["limit"], check_images=False)
    ids = [it.id for it in items]
    features = tax.ids
    G = indicator([it.features for it in items], features)
    unit, clusters = resampling(items)
    W = bootstrap_weights(len(items), task.metrics.bootstrap, seed, clusters)
    result, preds, misses, boots, prov_models = {}, {}, {}, {}, {}
    for n in names:
        rows, meta = read_predictions(out_dir, n, ids)
        P = indicator([rows[i]["labels"] for i in ids], features)
        misses[n] = [COVERAGE[rows[i]["status"]] != "answered" for i in ids]  # wrong answers in the strict scores
        m, boots[n] = score(G, P, features, W, misses[n])
        statuses = Counter(rows[i]["status"] for i in ids)
        unknown = Counter(t for i in ids for t in rows[i].get("unknown", []))
        status = {s: statuses.get(s, 0) for s in STATUSES}
        m.update(status=status, coverage=coverage(status), abstention=abstention(items, rows),
                 unknown_terms=dict(unknown.most_common(20)), kind=meta["kind"], control=meta["control"],
                 calibration=calibration.for_model([rows[i] for i in ids], meta, features, G, P, W))
        result[n], preds[n] = m, P
        prov_models[n] = {k: meta.get(k) for k in ("identity", "decoding", "prompt_variant", "prompt_sha256", "control", "created",
                                                   "adapter_check")}
    pairs = []
    for i, j in combinations(range(len(names)), 2):
        a, b = names[i], names[j]
        pairs.append({"a": a, "b": b, "n": len(ids), "metrics": paired(
            G, preds[a], preds[b], boots[a], boots[b], task.metrics.permutations, seed=seed * 1000 + i * 100 + j,
            miss_a=misses[a], miss_b=misses[b], clusters=clusters)})
    # Holm over the report's whole family: every metric of every pair.
    family = [v for p in pairs for v in p["metrics"].values()]
    for v, adj in zip(family, holm(v["p_value"] for v in family)):
        v["p_holm"] = adj
    tax_info = {"version": tax.version, "sha256": tax.sha256}
    prov = {"gold": str(gold_path), "gold_sha256": sha256_file(gold_path), "n_gold_items": len(ids),
            "task": {**first["task"], "scored_with": str(task_path)}, "taxonomy": tax_info,
            "templates_sha256": template_sha256(), "git": git_state(), "fracbench": __version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "limit": first["limit"],
            "not_a_score": first["limit"] is not None, "seed": seed, "bootstrap": task.metrics.bootstrap,
            "permutations": task.metrics.permutations, "resampling": unit, "command": " ".join(sys.argv),
            "host": host(),  # in `fracbench run`, the process that also ran local inference
            "models": prov_models}
    metrics = {"headline": HEADLINE, "models": result, "paired": pairs, "annotators": annotator_agreement(items, features), "provenance": prov}
    if pairs_inherit:
        metrics["inheritance"] = [{"student": s, "teacher": t, **inheritance(G, preds[t], preds[s], features, W)}
                                  for s, t in pairs_inherit]
    path = out_dir / "metrics.json"
    atomic_write_bytes(path, (json.dumps(metrics, indent=1, sort_keys=False) + "\n").encode())
    by = "images" if unit["unit"] == "image" else f"{unit['clusters']} clusters ({unit['unit']})"
    by = f"{unit['clusters']} source papers" if unit["unit"] == "source paper" else by
    log(f"wrote {path}: {len(names)} models x {len(ids)} images, {len(pairs)} paired tests (Holm over "
        f"{len(family)}), {len(metrics['annotators'])} annotator pairs; bootstrap over {by}"
        + (f" (--limit {first['limit']}: NOT A SCORE)" if first["limit"] else ""))
    for n in names:
        mi, cov = result[n]["micro"], result[n]["coverage"]
        log(f"  {n:24s} micro P {mi['precision']['value']:.3f} [{mi['precision']['ci_low']:.3f}, {mi['precision']['ci_high']:.3f}]"
            f"  coverage {cov['answered']}/{cov['n']}  strict P {result[n]['strict']['micro']['precision']['value']:.3f}"
            f"  R {mi['recall']['value']:.3f}  F1 {mi['f1']['value']:.3f}  failed {cov['failed']}  unparsed {cov['unparsed']}"
            f"  | headline strict Jaccard {result[n]['strict']['jaccard']['value']:.3f}, \"none\" on "
            f"{result[n]['abstention']['none_on_featured']}/{result[n]['abstention']['featured']} images with features")
    return metrics


def run(args) -> int:
    score_dir(args.out, args.models, args.gold, args.task, args.seed, inherit=args.inherit)
    return 0

"""Model entries of kind `probe`: logistic regressions on a frozen vision tower, scored as a model.

    name: probe
    kind: probe
    path: data/processed/synthetic     # a dataset folder (fracdata build): its training split
    encoder: models/tiny-qwen3vl       # the checkpoint whose vision tower embeds the images

fracdata.probe.model fits one regression per feature on the dataset's training rows and predicts
each gold image (a feature when P >= 0.5); the rows go through the same parse, metrics and report
as a checkpoint's, so the probe's row answers "would a classifier on the same pixels do?".
Embeddings are cached beside the prediction cache (probe-embeddings.sqlite); the fit is seconds.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from fracdata.errors import FracdataError


def infer_probe(task, task_path, thash, tax, entry, items, gold, out_dir, cache, limit=None, control=None, log=print) -> dict:
    """Write DIR/predictions/<name>.jsonl + meta for a `probe` entry, like `infer_model` does."""
    import time

    from fracbench import __version__
    from fracbench.data import STATUSES, write_predictions
    from fracdata.inference.local import local_folder
    from fracdata.probe.model import fit_and_predict
    from fracdata.records import sha256_file

    if control is not None:
        raise FracdataError(f"model {entry.name}: a `probe` entry has no {control}-image control")
    encoder = local_folder(entry.encoder, "encoder", entry.name)
    t0 = time.time()
    probs, identity, failed = fit_and_predict(Path(entry.path), encoder, {it.id: it.image for it in items},
                                              Path(cache.path).with_name("probe-embeddings.sqlite"), tax,
                                              entry.image_max_pixels, entry.image_min_pixels, log=log)
    per = round((time.time() - t0) / max(1, len(items)), 4)
    rows = []
    for it in items:
        row = {"id": it.id, "model": entry.name, "latency_s": per, "usage": None, "cached": False}
        if it.id in failed:
            row.update(raw="", labels=[], unknown=[], status="failed", error=": ".join(failed[it.id]))
        else:
            labels = tax.sort(f for f, p in probs[it.id].items() if p >= 0.5)
            row.update(raw=", ".join(labels) or "none", labels=labels, unknown=[], status="ok" if labels else "none",
                       probabilities={f: round(p, 6) for f, p in probs[it.id].items()})
        rows.append(row)
    statuses = Counter(r["status"] for r in rows)
    meta = {"model": entry.name, "entry": entry.name, "kind": "probe", "control": None, "identity": identity,
            "decoding": {}, "prompt_variant": None, "prompt_sha256": None,
            "task": {"name": task.name, "version": task.version, "file": str(task_path), "hash": thash},
            "gold": {"path": str(gold), "sha256": sha256_file(gold)}, "limit": limit, "n": len(rows),
            "cached": 0, "computed": len(rows), "statuses": {s: statuses.get(s, 0) for s in STATUSES},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "fracbench": __version__}
    out = write_predictions(out_dir, entry.name, rows, meta)
    log(f"wrote {out}: {len(rows)} rows from the probe on {entry.path}'s training split "
        f"({identity['train_images']} images; {', '.join(f'{s} {statuses.get(s, 0)}' for s in STATUSES)})")
    return meta

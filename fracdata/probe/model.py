"""The probe as a model: logistic regressions on a dataset's training split, applied to new images.

It answers the referee's question "is the language model needed, or would a classifier on the
same pixels do?": the same frozen vision tower the VLM starts from, one logistic regression per
feature, trained on exactly the rows the student was trained on (the built dataset's
`train_full.json`, original orientation only: the rotated copies are the same image to a
classifier that pools over patches), scored by fracbench like any model (a `kind: probe` entry).
A feature is predicted when its probability is >= 0.5. Features with fewer than
fit.MIN_POSITIVES training images are never predicted (listed in the identity).
"""

from __future__ import annotations

import json
from pathlib import Path

from fracdata.errors import FracdataError

TRAIN_FILE = "train_full.json"
THRESHOLD = 0.5


def training_rows(dataset: Path, taxonomy) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(id, image, features) of the training split's original-orientation rows."""
    from fracdata.answer import parse_answer

    path = dataset / TRAIN_FILE
    if not path.is_file():
        raise FracdataError(f"{path}: not found: a probe entry's `path` is a dataset folder built by `fracdata build`")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FracdataError(f"{path}: not a dataset file written by `fracdata build` ({e})") from None
    out = []
    for r in rows:
        if r.get("aug") != "none":
            continue
        answer = next(m["content"] for m in r["messages"] if m["role"] == "assistant")
        out.append((r["id"], dataset / r["images"][0], tuple(parse_answer(answer, taxonomy).labels)))
    if not out:
        raise FracdataError(f"{path}: no training rows")
    return out


def fit_and_predict(dataset: Path, encoder: Path, images: dict[str, Path], cache_path: Path, taxonomy,
                    max_pixels: int, min_pixels: int, seed: int = 0, c: float = 1.0, log=print):
    """({id: {feature: probability}} for `images`, identity dict, {id: (reason, detail)} failures)."""
    import numpy as np

    from fracdata.probe import embed, fit
    from fracdata.records import sha256_file

    rows = training_rows(dataset, taxonomy)
    cache = embed.Cache(cache_path)
    try:
        vecs, identity, failed_train = embed.embed_all({i: p for i, p, _ in rows}, encoder, cache, max_pixels, min_pixels,
                                                       log=log)
        test, _, failed = embed.embed_all(images, encoder, cache, max_pixels, min_pixels, log=log)
    finally:
        cache.close()
    if failed_train:
        i, (reason, detail) = next(iter(failed_train.items()))
        raise FracdataError(f"{dataset}: {len(failed_train)} training images cannot be embedded (first {i[:12]}...: "
                            f"{reason}: {detail}); rebuild the dataset")
    features = [f for f in taxonomy.ids if any(f in feats for _, _, feats in rows)]
    X = np.stack([vecs[i] for i, _, _ in rows])
    Y = np.array([[f in feats for f in features] for _, _, feats in rows], dtype=int)
    ids = [i for i in images if i in test]
    P, skipped = fit.fit_predict(X, Y, features, [i for i, _, _ in rows], np.stack([test[i] for i in ids]) if ids else
                                 np.zeros((0, X.shape[1])), seed, c)
    probs = {i: {f: float(P[k, j]) for j, f in enumerate(features) if f not in skipped} for k, i in enumerate(ids)}
    ident = {"kind": "probe", "dataset": str(dataset), "train_sha256": sha256_file(dataset / TRAIN_FILE),
             "train_images": len(rows), "encoder": str(encoder), "encoder_identity": identity, "pooling": embed.POOLING,
             "C": c, "seed": seed, "threshold": THRESHOLD, "not_predicted": skipped}
    return probs, ident, failed

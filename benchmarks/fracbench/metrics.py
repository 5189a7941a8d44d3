"""Per-image multi-label metrics, bootstrap CIs, paired tests and Cohen's kappa (pure numpy).

Conventions (docs/bench.md):
- 0/0 is 0, as scikit-learn's `zero_division=0`: a model that predicts nothing has precision 0
  (never 1), and a feature it never predicts has precision 0.
- micro: counts pooled over all (image, feature) cells. macro: the mean over the features
  present in the gold of the images scored (features nobody annotated would add 0/0 terms).
- exact match: predicted set == gold set. Jaccard: |P & G| / |P | G| per image, averaged; an
  image where both are empty scores 1 (it is an exact match).
- CIs: percentile bootstrap over images (seeded; one set of resamples shared by all models, so
  their CIs and the paired differences use the same resampled benchmarks).
- Paired test: approximate randomisation: swap the two models' answers on each image with
  probability 1/2; p = (1 + #{|diff*| >= |diff|}) / (1 + rounds).
Every metric is computed from summed counts so a resample is a weight vector over images:
sums = W @ per-image counts, for a (rounds x images) matrix W, in one matrix product.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

PAIRED = (("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "f1"),
          ("exact_match", None), ("jaccard", None))


def indicator(label_lists, features: list[str]) -> np.ndarray:
    """(images x features) boolean matrix."""
    col = {f: j for j, f in enumerate(features)}
    m = np.zeros((len(label_lists), len(features)), dtype=bool)
    for i, labels in enumerate(label_lists):
        for f in labels:
            m[i, col[f]] = True
    return m


def _div(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


class Counts:
    """Per-image counts of one model against gold: tp/fp/fn (images x features), exact, jaccard."""

    def __init__(self, gold: np.ndarray, pred: np.ndarray):
        self.tp = (gold & pred).astype(float)
        self.fp = (~gold & pred).astype(float)
        self.fn = (gold & ~pred).astype(float)
        inter, union = self.tp.sum(1), (gold | pred).sum(1)
        self.exact = (gold == pred).all(1).astype(float)
        self.jaccard = np.where(union > 0, _div(inter, union), 1.0)


def from_sums(tp, fp, fn, exact, jaccard, n) -> dict:
    """Metrics from summed counts: tp/fp/fn (rounds x features), exact/jaccard/n (rounds,)."""
    TP, FP, FN = tp.sum(1), fp.sum(1), fn.sum(1)
    p_f, r_f, f_f = _div(tp, tp + fp), _div(tp, tp + fn), _div(2 * tp, 2 * tp + fp + fn)
    present = (tp + fn) > 0  # features in the gold of the (re)sampled images
    k = present.sum(1)
    return {"micro": {"precision": _div(TP, TP + FP), "recall": _div(TP, TP + FN), "f1": _div(2 * TP, 2 * TP + FP + FN)},
            "macro": {"precision": _div((p_f * present).sum(1), k), "recall": _div((r_f * present).sum(1), k),
                      "f1": _div((f_f * present).sum(1), k)},
            "exact_match": _div(exact, n), "jaccard": _div(jaccard, n),
            "per_feature": {"precision": p_f, "recall": r_f, "f1": f_f}}


def weighted(c: Counts, W: np.ndarray) -> dict:
    """Metrics of every resample at once: W is (rounds x images), W[b, i] = copies of image i."""
    return from_sums(W @ c.tp, W @ c.fp, W @ c.fn, W @ c.exact, W @ c.jaccard, W.sum(1))


def bootstrap_weights(n: int, rounds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(rounds, n))
    W = np.zeros((rounds, n))
    np.add.at(W, (np.arange(rounds)[:, None], idx), 1.0)
    return W


def _ci(point: float, boot: np.ndarray) -> dict:
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def score(gold: np.ndarray, pred: np.ndarray, features: list[str], W: np.ndarray) -> tuple[dict, dict]:
    """(JSON-ready metrics with 95% CIs, the bootstrap arrays for paired differences)."""
    # Only features in the gold or the predictions can score: the rest are all-zero columns.
    used = (gold | pred).any(0)
    gold, pred, features = gold[:, used], pred[:, used], [f for f, u in zip(features, used) if u]
    c = Counts(gold, pred)
    point = weighted(c, np.ones((1, len(gold))))
    boot = weighted(c, W)
    out = {avg: {m: _ci(point[avg][m][0], boot[avg][m]) for m in ("precision", "recall", "f1")}
           for avg in ("micro", "macro")}
    out["exact_match"] = _ci(point["exact_match"][0], boot["exact_match"])
    out["jaccard"] = _ci(point["jaccard"][0], boot["jaccard"])
    support, predicted = gold.sum(0), pred.sum(0)
    out["per_feature"] = {
        f: {**{m: _ci(point["per_feature"][m][0, j], boot["per_feature"][m][:, j]) for m in ("precision", "recall", "f1")},
            "support": int(support[j]), "predicted": int(predicted[j]), "tp": int(c.tp[:, j].sum())}
        for j, f in enumerate(features)}
    out["n"] = int(len(gold))
    out["labels_predicted"] = int(pred.sum())
    return out, boot


def _pick(metrics: dict, avg: str, m: str | None):
    return metrics[avg] if m is None else metrics[avg][m]


def paired(gold: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, boot_a: dict, boot_b: dict,
           rounds: int, seed: int) -> dict:
    """A - B on the same images: difference, paired-bootstrap 95% CI, approximate-randomisation p."""
    # Features nobody used add only zero columns (excluded from macro, nothing to micro): drop
    # them, so the (rounds x images) @ (images x features) products shrink ~5x on 53 features.
    used = (gold | pred_a | pred_b).any(0)
    gold, pred_a, pred_b = gold[:, used], pred_a[:, used], pred_b[:, used]
    a, b = Counts(gold, pred_a), Counts(gold, pred_b)
    n = len(gold)
    ones = np.ones((1, n))
    pa, pb = weighted(a, ones), weighted(b, ones)
    S = (np.random.default_rng(seed).random((rounds, n)) < 0.5).astype(float)  # 1 = swap image i
    # With swaps, A* sums x_A over kept images + x_B over swapped ones = sum(x_A) + S @ (x_B - x_A),
    # and B* = sum(x_B) - S @ (x_B - x_A): one product per count serves both models.
    d = {k: S @ (getattr(b, k) - getattr(a, k)) for k in ("tp", "fp", "fn", "exact", "jaccard")}
    full = np.full(rounds, float(n))
    ma = from_sums(*(getattr(a, k).sum(0) + d[k] for k in ("tp", "fp", "fn", "exact", "jaccard")), full)
    mb = from_sums(*(getattr(b, k).sum(0) - d[k] for k in ("tp", "fp", "fn", "exact", "jaccard")), full)
    out = {}
    for avg, m in PAIRED:
        diff = float(_pick(pa, avg, m)[0] - _pick(pb, avg, m)[0])
        perm = _pick(ma, avg, m) - _pick(mb, avg, m)
        lo, hi = np.percentile(_pick(boot_a, avg, m) - _pick(boot_b, avg, m), [2.5, 97.5])
        # 1e-12: equal-up-to-rounding permuted differences count as "as extreme".
        p = (1 + int((np.abs(perm) >= abs(diff) - 1e-12).sum())) / (1 + rounds)
        out[avg if m is None else f"{avg}_{m}"] = {"diff": diff, "ci_low": float(lo), "ci_high": float(hi), "p_value": p}
    return out


def cohen_kappa(x: np.ndarray, y: np.ndarray) -> float | None:
    """Cohen's kappa of two binary raters over the same cells; None when chance agreement is 1."""
    x, y = np.asarray(x, bool).ravel(), np.asarray(y, bool).ravel()
    po = float((x == y).mean())
    px, py = x.mean(), y.mean()
    pe = float(px * py + (1 - px) * (1 - py))
    return None if pe >= 1.0 else (po - pe) / (1 - pe)


def annotator_agreement(items, features: list[str]) -> list[dict]:
    """Cohen's kappa for every pair of annotators, over (image, feature) cells of the images both
    annotated and the features either of them used there (all-negative features would only add
    trivial agreement)."""
    names = sorted({a for it in items for a in (it.annotators or {})})
    out = []
    for a, b in combinations(names, 2):
        both = [it for it in items if it.annotators and a in it.annotators and b in it.annotators]
        if not both:
            continue
        used = sorted({f for it in both for f in (*it.annotators[a], *it.annotators[b])}, key=features.index)
        xa = indicator([it.annotators[a] for it in both], used)
        xb = indicator([it.annotators[b] for it in both], used)
        kappa = cohen_kappa(xa, xb) if used else None
        out.append({"a": a, "b": b, "n_images": len(both), "n_features": len(used), "kappa": kappa,
                    "exact_agreement": float((xa == xb).all(1).mean())})
    return out

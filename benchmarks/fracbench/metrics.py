"""Per-image multi-label metrics, bootstrap CIs, paired tests and Holm (pure numpy); Cohen's kappa and
the indicator matrices are fracdata.agreement's.

Conventions (docs/bench.md):
- 0/0 is 0, as scikit-learn's `zero_division=0`: a model that predicts nothing has precision 0
  (never 1), and a feature it never predicts has precision 0.
- micro: counts pooled over all (image, feature) cells. macro: the mean over the union of the
  features in gold and in this model's predictions, as scikit-learn's `average="macro"` with
  `labels` = that union: a hallucinated feature (predicted, never in gold) scores 0 and lowers it.
- strict: a failed or unparsed answer is a wrong answer, not an abstention: its gold features are
  misses (as in the lenient scores) and it adds one false positive. Micro gets +1 FP per such
  item; per feature the FP is spread evenly, 1/k on each of the k features of the union (so the
  features' FPs still add up to the micro count); exact match and Jaccard score it 0.
- exact match: predicted set == gold set. Jaccard: |P & G| / |P | G| per image, averaged; an
  image where both are empty scores 1 (it is an exact match).
- headline: strict Jaccard. "none" on an image whose gold has features scores 0, the same as a
  wholly wrong answer, and so do features on a "none" image and a failed or unparsed answer; a
  partly right answer scores between. Abstaining on a hard image therefore never beats trying.
- CIs: percentile bootstrap over images, or over source papers (clusters) when the caller gives
  groups: a resampled paper brings all its images. Seeded; one set of resamples shared by all
  models. Each resample uses the same conventions (its own union of features).
- Paired test: approximate randomisation: swap the two models' answers on each image (each
  paper, when clustered) with probability 1/2; p = (1 + #{|diff*| >= |diff|}) / (1 + rounds).
  Holm's step-down adjustment over a report's whole family of paired tests.
Every metric is computed from summed counts so a resample is a weight vector over images:
sums = W @ per-image counts, for a (rounds x images) matrix W, in one matrix product.
"""

from __future__ import annotations

import numpy as np

from fracdata.agreement import indicator

# The headline first: strict per-image Jaccard (docs/bench.md, "The headline"), then the rest.
PAIRED = (("strict", "jaccard"), ("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "f1"),
          ("exact_match", None), ("jaccard", None))
# Per-image count arrays every metric is summed from (feature-wise first, then per image).
FIELDS = ("tp", "fp", "fn", "exact", "jaccard", "miss", "exact_s", "jaccard_s")


def _div(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


class Counts:
    """Per-image counts of one model against gold: tp/fp/fn (images x features), exact, jaccard,
    and for the strict scores `miss` (1 = failed or unparsed) with exact/jaccard zeroed there."""

    def __init__(self, gold: np.ndarray, pred: np.ndarray, miss: np.ndarray | None = None):
        self.tp = (gold & pred).astype(float)
        self.fp = (~gold & pred).astype(float)
        self.fn = (gold & ~pred).astype(float)
        inter, union = self.tp.sum(1), (gold | pred).sum(1)
        self.exact = (gold == pred).all(1).astype(float)
        self.jaccard = np.where(union > 0, _div(inter, union), 1.0)
        self.miss = np.zeros(len(gold)) if miss is None else np.asarray(miss, dtype=float)
        self.exact_s = self.exact * (1 - self.miss)
        self.jaccard_s = self.jaccard * (1 - self.miss)

    def sums(self, W: np.ndarray) -> dict:
        return {k: W @ getattr(self, k) for k in FIELDS}


def _prf(tp, fp, fn):
    return _div(tp, tp + fp), _div(tp, tp + fn), _div(2 * tp, 2 * tp + fp + fn)


def from_sums(s: dict, n) -> dict:
    """Metrics from summed counts: tp/fp/fn (rounds x features), the rest (rounds,); n (rounds,)."""
    tp, fp, fn = s["tp"], s["fp"], s["fn"]
    used = (tp + fp + fn) > 0  # the union of gold and predicted features in these (resampled) images
    k = used.sum(1)
    p_f, r_f, f_f = _prf(tp, fp, fn)
    TP, FP, FN = tp.sum(1), fp.sum(1), fn.sum(1)

    def avg(p, r, f, u=used, kk=k):
        return {"precision": _div((p * u).sum(1), kk), "recall": _div((r * u).sum(1), kk), "f1": _div((f * u).sum(1), kk)}

    micro = dict(zip(("precision", "recall", "f1"), _prf(TP, FP, FN)))
    # strict: each failed/unparsed item is one more false positive, spread 1/k over the union
    miss = s["miss"]
    fp_s = fp + _div(miss, k)[:, None] * used
    strict = {"micro": dict(zip(("precision", "recall", "f1"), _prf(TP, FP + miss, FN))),
              "macro": avg(*_prf(tp, fp_s, fn)),
              "exact_match": _div(s["exact_s"], n), "jaccard": _div(s["jaccard_s"], n)}
    return {"micro": micro, "macro": avg(p_f, r_f, f_f), "exact_match": _div(s["exact"], n),
            "jaccard": _div(s["jaccard"], n), "strict": strict,
            "per_feature": {"precision": p_f, "recall": r_f, "f1": f_f}}


def weighted(c: Counts, W: np.ndarray) -> dict:
    """Metrics of every resample at once: W is (rounds x images), W[b, i] = copies of image i."""
    return from_sums(c.sums(W), W.sum(1))


def cluster_index(groups) -> np.ndarray:
    """Group labels (one per image) -> cluster numbers 0..C-1 in order of first appearance."""
    first: dict = {}
    return np.array([first.setdefault(g, len(first)) for g in groups], dtype=int)


def bootstrap_weights(n: int, rounds: int, seed: int, clusters: np.ndarray | None = None) -> np.ndarray:
    """(rounds x n) copies of each image. With `clusters` (cluster number per image), whole
    clusters are drawn with replacement (C draws per resample) and bring all their images."""
    rng = np.random.default_rng(seed)
    C = n if clusters is None else int(clusters.max()) + 1
    idx = rng.integers(0, C, size=(rounds, C))
    Wc = np.zeros((rounds, C))
    np.add.at(Wc, (np.arange(rounds)[:, None], idx), 1.0)
    return Wc if clusters is None else Wc[:, clusters]


def _ci(point: float, boot: np.ndarray) -> dict:
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def _block(point: dict, boot: dict) -> dict:
    out = {avg: {m: _ci(point[avg][m][0], boot[avg][m]) for m in ("precision", "recall", "f1")}
           for avg in ("micro", "macro")}
    out["exact_match"] = _ci(point["exact_match"][0], boot["exact_match"])
    out["jaccard"] = _ci(point["jaccard"][0], boot["jaccard"])
    return out


def score(gold: np.ndarray, pred: np.ndarray, features: list[str], W: np.ndarray,
          miss: np.ndarray | None = None) -> tuple[dict, dict]:
    """(JSON-ready metrics with 95% CIs, the bootstrap arrays for paired differences).

    `miss` (images,): 1 where the answer failed or could not be parsed (for the strict scores).
    """
    # Only features in the gold or the predictions can score: the rest are all-zero columns.
    used = (gold | pred).any(0)
    gold, pred, features = gold[:, used], pred[:, used], [f for f, u in zip(features, used) if u]
    c = Counts(gold, pred, miss)
    point = weighted(c, np.ones((1, len(gold))))
    boot = weighted(c, W)
    out = _block(point, boot)
    out["strict"] = _block(point["strict"], boot["strict"])
    support, predicted = gold.sum(0), pred.sum(0)
    out["per_feature"] = {
        f: {**{m: _ci(point["per_feature"][m][0, j], boot["per_feature"][m][:, j]) for m in ("precision", "recall", "f1")},
            "support": int(support[j]), "predicted": int(predicted[j]), "tp": int(c.tp[:, j].sum())}
        for j, f in enumerate(features)}
    out["n"] = int(len(gold))
    out["labels_predicted"] = int(pred.sum())
    return out, boot


def _pick(metrics: dict, avg: str, m: str | None):
    return metrics[avg] if m is None else metrics[avg][m]  # ("strict", "jaccard") -> metrics["strict"]["jaccard"]


def paired(gold: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, boot_a: dict, boot_b: dict,
           rounds: int, seed: int, miss_a=None, miss_b=None, clusters: np.ndarray | None = None) -> dict:
    """A - B on the same images: difference, paired-bootstrap 95% CI, approximate-randomisation p.

    With `clusters`, a swap exchanges the two models' answers on all images of a paper at once,
    as the clustered bootstrap resamples whole papers.
    """
    # Features nobody used add only zero columns (excluded from macro, nothing to micro): drop
    # them, so the (rounds x images) @ (images x features) products shrink ~5x on 53 features.
    used = (gold | pred_a | pred_b).any(0)
    gold, pred_a, pred_b = gold[:, used], pred_a[:, used], pred_b[:, used]
    a, b = Counts(gold, pred_a, miss_a), Counts(gold, pred_b, miss_b)
    n = len(gold)
    ones = np.ones((1, n))
    pa, pb = weighted(a, ones), weighted(b, ones)
    C = n if clusters is None else int(clusters.max()) + 1
    S = (np.random.default_rng(seed).random((rounds, C)) < 0.5).astype(float)  # 1 = swap image (paper) i
    if clusters is not None:
        S = S[:, clusters]
    # With swaps, A* sums x_A over kept images + x_B over swapped ones = sum(x_A) + S @ (x_B - x_A),
    # and B* = sum(x_B) - S @ (x_B - x_A): one product per count serves both models.
    d = {k: S @ (getattr(b, k) - getattr(a, k)) for k in FIELDS}
    full = np.full(rounds, float(n))
    ma = from_sums({k: getattr(a, k).sum(0) + d[k] for k in FIELDS}, full)
    mb = from_sums({k: getattr(b, k).sum(0) - d[k] for k in FIELDS}, full)
    out = {}
    for avg, m in PAIRED:
        diff = float(_pick(pa, avg, m)[0] - _pick(pb, avg, m)[0])
        perm = _pick(ma, avg, m) - _pick(mb, avg, m)
        lo, hi = np.percentile(_pick(boot_a, avg, m) - _pick(boot_b, avg, m), [2.5, 97.5])
        # 1e-12: equal-up-to-rounding permuted differences count as "as extreme".
        p = (1 + int((np.abs(perm) >= abs(diff) - 1e-12).sum())) / (1 + rounds)
        out[avg if m is None else f"{avg}_{m}"] = {"diff": diff, "ci_low": float(lo), "ci_high": float(hi), "p_value": p}
    return out


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): the i-th smallest of m is
    multiplied by (m - i + 1), running maximum taken so the order is kept, capped at 1."""
    p = np.asarray(list(pvalues), dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()

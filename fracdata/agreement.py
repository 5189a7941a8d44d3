"""Agreement statistics, one implementation for every stage: Cohen's kappa of two binary raters, and
the (image x feature) indicator matrices it is computed over.

Used by `fracdata audit score` (GPT labels against a reviewer), `fracdata review` (gold annotators)
and fracbench (annotator agreement in a gold file). Pure numpy; equal to scikit-learn's
`cohen_kappa_score` on 0/1 vectors (tests/test_bench_metrics.py checks it), except that an
undefined kappa (chance agreement 1: both raters constant and equal) is None, not nan.

kappa = (p_o - p_e) / (1 - p_e), p_o the share of cells where the raters agree and
p_e = p_x p_y + (1 - p_x)(1 - p_y) the agreement expected from their marginal rates alone.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def indicator(label_lists, features: list[str]) -> np.ndarray:
    """(images x features) boolean matrix."""
    col = {f: j for j, f in enumerate(features)}
    m = np.zeros((len(label_lists), len(features)), dtype=bool)
    for i, labels in enumerate(label_lists):
        for f in labels:
            m[i, col[f]] = True
    return m


def cohen_kappa(x, y) -> float | None:
    """Cohen's kappa of two binary raters over the same cells; None when chance agreement is 1."""
    x, y = np.asarray(x, bool).ravel(), np.asarray(y, bool).ravel()
    po = float((x == y).mean())
    px, py = x.mean(), y.mean()
    pe = float(px * py + (1 - px) * (1 - py))
    return None if pe >= 1.0 else (po - pe) / (1 - pe)


def annotator_agreement(items, features: list[str]) -> list[dict]:
    """Cohen's kappa for every pair of annotators, over (image, feature) cells of the images both
    annotated and the features either of them used there (all-negative features would only add
    trivial agreement). `items` have `.annotators` = {name: [features]} or None."""
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

"""Per-feature logistic regression on frozen embeddings: out-of-fold probabilities, grouped by paper.

Each feature is its own binary task (the labels are multi-label sets). Out-of-fold: every image
is scored by a model that never saw it, nor any image of its paper (scikit-learn GroupKFold over
the split's paper group, fracdata.records.group_key), because crops of one paper share a
microscope, a material and often a specimen: a fold that split a paper would let the model
recognise the paper, not the feature, and make a wrong label look right. Standardised inputs,
L2-penalised LogisticRegression (C = 1 by default, lbfgs). A feature is left out, with the reason,
when fewer than MIN_POSITIVES images or fewer than 2 groups carry it, or every image does: no
fold could learn it.
"""

from __future__ import annotations

MIN_POSITIVES = 5


def _model(c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))


def skip_reason(y, groups) -> str | None:
    """Why a feature cannot be probed (None: it can). y: 0/1 per image; groups: per image."""
    pos = int(sum(y))
    if pos < MIN_POSITIVES:
        return f"{pos} positive images (needs {MIN_POSITIVES})"
    if pos == len(y):
        return "every image carries it"
    if len({g for g, v in zip(groups, y) if v}) < 2:
        return "all its images are in one paper (a grouped fold cannot learn it)"
    return None


def out_of_fold(X, Y, features: list[str], groups: list[str], folds: int, seed: int, c: float = 1.0, log=print):
    """(P, skipped): P[i, j] = out-of-fold P(feature j | image i), NaN for skipped features;
    skipped = {feature: reason}. X: (images, dim); Y: (images, features) 0/1."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    n_groups = len(set(groups))
    k = min(folds, n_groups)
    if k < 2:
        from fracdata.errors import FracdataError

        raise FracdataError(f"the probe needs images from at least 2 papers for grouped folds, got {n_groups}")
    # shuffled GroupKFold: groups dealt to folds in a seeded order, balanced by size
    splits = list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(X, groups=groups))
    P = np.full(Y.shape, np.nan)
    skipped = {}
    for j, y in _fittable(Y, features, groups, skipped):
        for train, test in splits:
            yt = y[train]
            if yt.min() == yt.max():  # this fold's training side holds one class: its prior is all it knows
                P[test, j] = float(yt[0])
                continue
            P[test, j] = _model(c, seed).fit(X[train], yt).predict_proba(X[test])[:, 1]
    log(f"probe: {len(features) - len(skipped)} features by grouped {k}-fold logistic regression over "
        f"{len(X)} images in {n_groups} papers" + (f"; {len(skipped)} left out" if skipped else ""))
    return P, skipped


def fit_predict(X_train, Y_train, features: list[str], groups: list[str], X_test, seed: int, c: float = 1.0):
    """(P_test, skipped): one model per feature on all of the training images, applied to X_test."""
    import numpy as np

    P = np.full((len(X_test), len(features)), np.nan)
    skipped = {}
    for j, y in _fittable(Y_train, features, groups, skipped):
        P[:, j] = _model(c, seed).fit(X_train, y).predict_proba(X_test)[:, 1]
    return P, skipped


def _fittable(Y, features: list[str], groups: list[str], skipped: dict):
    """(column, labels) of every feature a model can be fitted for; the others go into `skipped`
    with skip_reason's why (the same rule for cross-fitting and for the final fit)."""
    for j, f in enumerate(features):
        why = skip_reason(Y[:, j], groups)
        if why:
            skipped[f] = why
        else:
            yield j, Y[:, j]


def auc(y, p) -> float | None:
    """ROC AUC (scikit-learn), None when one class is absent."""
    import numpy as np

    y = np.asarray(y)
    if y.min() == y.max():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))

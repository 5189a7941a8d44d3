"""Fitting the per-feature Platt maps of calibration.json (pure numpy/scipy, no model).

For val image i and feature f, z_if = logit(p_f) of the model's score and y_if = 1 when the
image's label lists f. The map is u_if = exp(s + s_f) z_if + b + b_f, p = sigmoid(u), fitted by
minimising the log-loss plus lam * sum_f (s_f^2 + b_f^2) (scipy's L-BFGS-B, analytic gradient):
a Gaussian prior that pulls each feature's slope and bias toward the shared ones, so a feature
with 3 positives among 300 val images is calibrated mostly by the shared map, and one with 100 by
its own. lam is chosen from LAMBDAS by 5-fold cross-validation over val images (the held-out
mean log-loss per cell): the largest within one standard error of the best (`choose`); lam = 1e6
is the shared map alone (a temperature and a bias). Platt
(1999); per-class temperature/Platt shrinkage as in Kull et al. (2019), "Beyond temperature
scaling".
"""

from __future__ import annotations

import numpy as np

LAMBDAS = (0.1, 1.0, 10.0, 100.0, 1e6)
FOLDS = 5
CLIP = 1e-12  # as fracdata.inference.calibration.LOGIT_CLIP


def logits(logprobs: np.ndarray) -> np.ndarray:
    """logit(p) from log p, p clipped to [1e-12, 1 - 1e-12] (vectorised logit_of_logprob)."""
    p = np.clip(np.exp(logprobs), CLIP, 1 - CLIP)
    return np.log(p) - np.log1p(-p)


def _unpack(theta: np.ndarray, F: int):
    return theta[0], theta[1], theta[2:2 + F], theta[2 + F:]


def predict(theta: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Calibrated logits u (images x features) for parameters [s, b, s_f..., b_f...]."""
    s, b, sf, bf = _unpack(theta, Z.shape[1])
    return np.exp(s + sf)[None, :] * Z + (b + bf)[None, :]


def loss(theta: np.ndarray, Z: np.ndarray, Y: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """(penalised summed log-loss, its gradient). log(1 + e^u) - y u is the log-loss of logit u."""
    s, b, sf, bf = _unpack(theta, Z.shape[1])
    e = np.exp(s + sf)[None, :]
    u = e * Z + (b + bf)[None, :]
    value = float((np.logaddexp(0, u) - Y * u).sum() + lam * ((sf ** 2).sum() + (bf ** 2).sum()))
    r = 0.5 * (1 + np.tanh(u / 2)) - Y  # sigmoid(u) - y, overflow-free
    g_sf = (r * e * Z).sum(0) + 2 * lam * sf
    g_bf = r.sum(0) + 2 * lam * bf
    grad = np.concatenate([[(r * e * Z).sum(), r.sum()], g_sf, g_bf])
    return value, grad


def fit(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """Parameters [s, b, s_f..., b_f...] minimising `loss`, started at the identity map."""
    from scipy.optimize import minimize

    theta0 = np.zeros(2 + 2 * Z.shape[1])
    res = minimize(loss, theta0, args=(Z, Y.astype(float), lam), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000})
    return res.x


def mean_logloss(u: np.ndarray, Y: np.ndarray) -> float:
    return float((np.logaddexp(0, u) - Y * u).mean())


def cross_validate(Z: np.ndarray, Y: np.ndarray, lambdas=LAMBDAS, folds: int = FOLDS, seed: int = 0) -> dict:
    """{lam: (held-out log-loss per cell, its standard error over the folds)}, `folds` folds of images (seeded)."""
    n = len(Z)
    k = max(2, min(folds, n))
    fold = np.random.default_rng(seed).permutation(n) % k
    out = {}
    for lam in lambdas:
        per = []
        for j in range(k):
            test = fold == j
            u = predict(fit(Z[~test], Y[~test], lam), Z[test])
            per.append(mean_logloss(u, Y[test]))
        out[lam] = (float(np.mean(per)), float(np.std(per, ddof=1) / np.sqrt(k)))
    return out


def choose(cv: dict) -> float:
    """The strongest shrinkage whose held-out log-loss is within one standard error of the best
    (Breiman's one-standard-error rule: of maps that predict equally well, the simplest)."""
    best = min(cv, key=lambda k: cv[k][0])
    limit = cv[best][0] + cv[best][1]
    return max(k for k, (loss, _) in cv.items() if loss <= limit)


def calibrate(Z: np.ndarray, Y: np.ndarray, seed: int = 0) -> dict:
    """The fitted maps and how they were chosen: {"lam", "theta", "cv": {lam: (log-loss, se)},
    "raw_logloss", "fitted_logloss"}."""
    Y = Y.astype(float)
    cv = cross_validate(Z, Y, seed=seed)
    lam = choose(cv)
    theta = fit(Z, Y, lam)
    return {"lam": lam, "theta": theta, "cv": cv, "raw_logloss": mean_logloss(Z, Y),
            "fitted_logloss": mean_logloss(predict(theta, Z), Y)}

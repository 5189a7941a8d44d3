"""Calibration of per-feature probabilities against gold: smooth ECE, binned ECE, Brier, the
reliability curve and risk-coverage, each with a bootstrap CI (pure numpy).

Cells: every (image, feature) pair, 53 per image, with p = the model's probability that the
feature is in the image and y = 1 when gold lists it. Resampling is the same weight matrix W
(rounds x images) as every other metric (images, or whole source papers), so every figure here
is a sum over images and a resample is one matrix product.

Smooth ECE (Blasiok & Nakkiran 2023, "Smooth ECE: principled reliability diagrams via kernel
smoothing"): with K_s a Gaussian kernel of width s reflected at 0 and 1 (so a unit mass anywhere
in [0, 1] keeps mass 1 inside it),
    smECE_s = (1/N) * integral over t in [0, 1] of | sum_i K_s(t, p_i) (y_i - p_i) | dt,
and smECE = smECE_s* at the fixed point s* = smECE_s* (the paper's bandwidth rule: no bins to
choose). A constant predictor c with observed rate r scores exactly |r - c| at every s (all
residuals share one sign, and each kernel integrates to 1): the tests check this, and 0 for a
predictor whose every value v is followed by exactly a share v of positives. Computed on a grid
of GRID points (masses split linearly between the two nearest: means are kept), for s on a
geometric grid SIGMAS, s* interpolated where smECE_s - s changes sign; per resample likewise.
Binned ECE: 10 equal-width bins, sum over bins of |sum(y) - sum(p)| / N. Brier: mean (p - y)^2.

An ECE counts sampling noise as miscalibration, so even a perfect model scores above 0, and a
resample (which adds noise) scores higher than the sample: near that floor the percentile
interval can sit above the value. So each smooth ECE comes with its consistency floor
(Broecker & Smith 2007, "consistency bars"): the smooth ECE of the same probabilities with
outcomes drawn from them (a perfectly calibrated model, FLOOR_DRAWS draws): its mean, its 95th
percentile, and p = the share of draws scoring at least the observed value (a test of
"calibrated"; p < 0.05: miscalibrated beyond noise).
"""

from __future__ import annotations

import numpy as np

GRID = 101  # t = 0, 0.01, ..., 1
SIGMAS = np.geomspace(0.003, 0.5, 28)
BINS = 10
RC_POINTS = 101  # risk-coverage points kept in metrics.json
FLOOR_DRAWS = 200  # p resolution 1/201


def _ci(point: float, boot: np.ndarray) -> dict:
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def grid_mass(P: np.ndarray, V: np.ndarray, G: int = GRID) -> np.ndarray:
    """(images x G): per image, sum over its features of V spread onto the grid at P."""
    x = np.clip(P, 0.0, 1.0) * (G - 1)
    lo = np.minimum(x.astype(int), G - 2)
    frac = x - lo
    out = np.zeros((P.shape[0], G))
    rows = np.repeat(np.arange(P.shape[0])[:, None], P.shape[1], 1)
    np.add.at(out, (rows, lo), V * (1 - frac))
    np.add.at(out, (rows, lo + 1), V * frac)
    return out


def trapezoid(G: int = GRID) -> np.ndarray:
    """Integration weights on the grid: dt, halved at both ends."""
    w = np.full(G, 1.0 / (G - 1))
    w[[0, -1]] /= 2
    return w


def kernel(sigma: float, G: int = GRID) -> np.ndarray:
    """(G x G) K[a, b]: density at t_a of a unit mass at t_b, Gaussian reflected at 0 and 1,
    each column normalised to integrate to exactly 1 over [0, 1] (trapezoid weights)."""
    t = np.linspace(0.0, 1.0, G)
    d = t[:, None]
    K = sum(np.exp(-0.5 * ((d - m) / sigma) ** 2) for m in (t[None, :], -t[None, :], 2 - t[None, :]))
    return K / (trapezoid(G) @ K)[None, :]


def smooth_ece_sigmas(R: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(len(SIGMAS) x rows) smECE_s for residual grid masses R (rows x G) over n cells per row."""
    w = trapezoid(R.shape[1])
    return np.stack([np.abs(R @ kernel(s, R.shape[1]).T) @ w / n for s in SIGMAS])


def fixed_point(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s*, smECE at s*) per column of S (len(SIGMAS) x rows): where smECE_s - s first turns
    <= 0, interpolated linearly in s; smECE_s is non-increasing in practice, s increasing."""
    d = S - SIGMAS[:, None]
    k = np.argmax(d <= 0, axis=0)  # first sigma at or past the crossing
    k = np.where((d <= 0).any(0), k, len(SIGMAS) - 1)
    k0 = np.maximum(k - 1, 0)
    cols = np.arange(S.shape[1])
    d0, d1 = d[k0, cols], d[k, cols]
    a = np.where((k > 0) & (d0 != d1), d0 / np.where(d0 != d1, d0 - d1, 1.0), 0.0)
    sig = SIGMAS[k0] + a * (SIGMAS[k] - SIGMAS[k0])
    val = S[k0, cols] + a * (S[k, cols] - S[k0, cols])
    return sig, val


def consistency(P: np.ndarray, observed: float, draws: int = FLOOR_DRAWS, seed: int = 0) -> dict:
    """The smooth ECE a perfectly calibrated model with probabilities P scores (module doc)."""
    p = np.asarray(P, float).ravel()
    M = grid_mass(p.reshape(-1, 1), np.ones((p.size, 1)))  # (cells x G) interpolation weights
    Yd = np.random.default_rng(seed).random((draws, p.size)) < p
    R = (Yd - p) @ M
    _, sm = fixed_point(smooth_ece_sigmas(R, np.full(draws, float(p.size))))
    return {"mean": float(sm.mean()), "p95": float(np.percentile(sm, 95)),
            "p_value": float((1 + (sm >= observed - 1e-12).sum()) / (1 + draws)), "draws": draws}


def smooth_ece(P: np.ndarray, Y: np.ndarray) -> float:
    """smECE of probabilities P against outcomes Y (any shape; every cell counts once)."""
    P, Y = np.atleast_2d(np.asarray(P, float)), np.atleast_2d(np.asarray(Y, float))
    R = grid_mass(P.reshape(1, -1), (Y - P).reshape(1, -1))
    return float(fixed_point(smooth_ece_sigmas(R, np.array([float(P.size)])))[1][0])


def binned_ece(P: np.ndarray, Y: np.ndarray, bins: int = BINS) -> float:
    P, Y = np.asarray(P, float).ravel(), np.asarray(Y, float).ravel()
    b = np.minimum((P * bins).astype(int), bins - 1)
    return float(np.abs(np.bincount(b, Y - P, bins)).sum() / P.size)


def risk_coverage(P: np.ndarray, Y: np.ndarray, listed: np.ndarray) -> dict:
    """Precision of the listed features kept when only those with p >= a threshold are kept,
    against the share kept (coverage), most confident first."""
    p, y = P[listed], Y[listed].astype(float)
    if p.size == 0:
        return {"listed": 0, "coverage": [], "precision": [], "threshold": [], "precision_at": {}, "area": None}
    order = np.argsort(-p, kind="stable")
    prec = np.cumsum(y[order]) / np.arange(1, p.size + 1)
    cov = np.arange(1, p.size + 1) / p.size
    keep = np.unique(np.linspace(0, p.size - 1, min(RC_POINTS, p.size)).round().astype(int))
    at = {f"{c:g}": float(prec[max(0, int(np.ceil(c * p.size)) - 1)]) for c in (0.25, 0.5, 0.75, 1.0)}
    return {"listed": int(p.size), "coverage": cov[keep].tolist(), "precision": prec[keep].tolist(),
            "threshold": p[order][keep].tolist(), "precision_at": at, "area": float(prec.mean())}


def block(P: np.ndarray, Y: np.ndarray, listed: np.ndarray, W: np.ndarray) -> dict:
    """Every calibration figure of one set of probabilities P (images x features) against gold Y,
    with percentile-bootstrap 95% CIs over the resamples W (rounds x images)."""
    Y = Y.astype(float)
    n_img, F = P.shape
    Wall = np.vstack([np.ones((1, n_img)), W])  # row 0: the sample itself
    n = Wall.sum(1) * F
    R = Wall @ grid_mass(P, Y - P)
    sig, sm = fixed_point(smooth_ece_sigmas(R, n))
    b = np.minimum((P * BINS).astype(int), BINS - 1)
    per_bin = lambda V: np.stack([np.bincount(b[i], V[i], BINS) for i in range(n_img)])  # noqa: E731
    cnt, sp, sy = per_bin(np.ones_like(P)), per_bin(P), per_bin(Y)
    binned = np.abs(Wall @ sy - Wall @ sp).sum(1) / n
    brier = Wall @ ((P - Y) ** 2).sum(1) / n
    # the reliability curve E[y | p = t] at the sample's s*, with its bootstrap band
    K = kernel(float(sig[0]))
    dens = Wall @ grid_mass(P, np.ones_like(P)) @ K.T
    curve = (Wall @ grid_mass(P, Y)) @ K.T / np.maximum(dens, 1e-12)
    lo, hi = np.percentile(curve[1:], [2.5, 97.5], axis=0)
    # where the sample has under one cell within +-0.01 of t the curve is an extrapolation: not drawn
    seen = dens[0] * 0.02 >= 1.0
    shown = lambda v: [round(float(x), 5) if ok else None for x, ok in zip(v, seen)]  # noqa: E731
    c, s_p, s_y = cnt.sum(0), sp.sum(0), sy.sum(0)
    return {"cells": int(P.size), "images": int(n_img), "features": int(F), "positives": int(Y.sum()),
            "smooth_ece": {**_ci(sm[0], sm[1:]), "sigma": float(sig[0]), "floor": consistency(P, float(sm[0]))},
            "binned_ece": {**_ci(binned[0], binned[1:]), "bins": BINS},
            "brier": _ci(brier[0], brier[1:]),
            "reliability": {"t": np.linspace(0, 1, GRID).round(4).tolist(), "curve": shown(curve[0]),
                            "low": shown(lo), "high": shown(hi),
                            "density": (dens[0] / n[0]).round(5).tolist(),
                            "bins": [{"lo": k / BINS, "hi": (k + 1) / BINS, "n": int(c[k]),
                                      "mean_p": float(s_p[k] / c[k]) if c[k] else None,
                                      "freq": float(s_y[k] / c[k]) if c[k] else None} for k in range(BINS)]},
            "risk_coverage": risk_coverage(P, Y, listed)}


def _matrix(rows: list[dict], key: str, features: list[str], log: bool) -> np.ndarray | None:
    """(images x features) probabilities from each row's `key` ({feature: number}), or None when
    a row lacks them or holds something else (a hand-edited or foreign predictions file)."""
    out = np.zeros((len(rows), len(features)))
    for i, r in enumerate(rows):
        d = r.get(key)
        if not isinstance(d, dict):
            return None
        try:
            vals = [float(d[f]) for f in features]
        except (KeyError, TypeError, ValueError):
            return None
        out[i] = vals
    out = np.exp(np.minimum(out, 0.0)) if log else out
    return out if np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all() else None


def for_model(rows: list[dict], meta: dict, features: list[str], G: np.ndarray, listed: np.ndarray,
              W: np.ndarray) -> dict:
    """metrics.json's `calibration` for one model: {"available", "reason"} and, when it has
    probabilities, "raw" (the model's own feature scores) and "calibrated" (calibration.json's
    maps, None without one) blocks, with "calibration" = where those maps came from."""
    if meta.get("kind") != "local":
        why = {"labels": "a labels file: no probabilities",
               "openai-compatible": "an endpoint: it returns no per-feature probabilities (API models give at most "
                                    "their own answer's token log-probabilities)"}.get(meta.get("kind"), "no probabilities")
        return {"available": False, "reason": why}
    raw = _matrix(rows, "feature_logprobs", features, log=True)
    if raw is None:
        return {"available": False, "reason": "its predictions carry no complete feature_logprobs (re-run fracbench infer)"}
    cal = _matrix(rows, "calibrated_probs", features, log=False)
    return {"available": True, "reason": None, "raw": block(raw, G, listed, W),
            "calibrated": None if cal is None else block(cal, G, listed, W), "calibration": meta.get("calibration")}

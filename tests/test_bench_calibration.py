"""fracbench's calibration figures on synthetic predictors whose calibration error is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from fracbench.calibration import (SIGMAS, binned_ece, block, consistency, fixed_point, kernel, risk_coverage,
                                   smooth_ece, trapezoid)


def groups(values, per=100):
    """Predictions `values`, `per` cells each, with exactly round(v * per) positives in each group."""
    P = np.repeat(values, per)
    Y = np.concatenate([np.arange(per) < round(v * per) for v in values])
    return P, Y


def test_a_perfectly_calibrated_predictor_scores_zero():
    # every value v is followed by exactly a share v of positives: each group's residuals sum to 0,
    # so every kernel-weighted sum of them is 0 (smooth) and every bin's is 0 (binned)
    P, Y = groups([0.1, 0.3, 0.5, 0.7, 0.9])
    assert smooth_ece(P, Y) == pytest.approx(0.0, abs=1e-12)
    assert binned_ece(P, Y) == pytest.approx(0.0, abs=1e-12)


def test_a_constant_predictor_scores_its_distance_from_the_rate_at_every_bandwidth():
    # one value c, observed rate r: all residuals share one sign and each reflected kernel
    # integrates to 1 on [0, 1], so smECE_s = |r - c| for every s (on or off the grid)
    Y = np.array([1, 0] * 500)
    for c in (0.7, 0.737, 0.02, 1.0):
        assert smooth_ece(np.full(1000, c), Y) == pytest.approx(abs(0.5 - c), abs=1e-9)
        assert binned_ece(np.full(1000, c), Y) == pytest.approx(abs(0.5 - c), abs=1e-12)


def test_an_overconfident_predictor_scores_its_exact_gap():
    # says 0.9 where 60% are positive and 0.6 where 30% are: every residual is negative, so the
    # smooth ECE is the mean gap exactly, (0.3 + 0.3) / 2 = 0.3, as is the binned one
    P = np.repeat([0.9, 0.6], 100)
    Y = np.concatenate([np.arange(100) < 60, np.arange(100) < 30])
    assert smooth_ece(P, Y) == pytest.approx(0.3, abs=1e-9)
    assert binned_ece(P, Y) == pytest.approx(0.3, abs=1e-12)


def test_sharpened_probabilities_are_caught_and_calibrated_ones_are_not():
    rng = np.random.default_rng(0)
    p = rng.random(50_000)
    y = rng.random(50_000) < p
    over = np.clip(0.5 + 1.6 * (p - 0.5), 0, 1)  # pushed toward 0 and 1
    # its ECE in the limit: E|clip(0.5 + 1.6 (p - 0.5)) - p| over p ~ U(0, 1): the gap is 0.6 |p - 0.5|
    # between the clips at p = 0.1875 and 0.8125 (2 * 0.3 * 0.3125^2 = 0.05859) and p, 1 - p beyond
    # them (2 * 0.1875^2 / 2 = 0.03516): 3/32 = 0.09375
    expected = 3 / 32
    grid = np.linspace(0, 1, 1_000_001)
    assert np.abs(np.clip(0.5 + 1.6 * (grid - 0.5), 0, 1) - grid).mean() == pytest.approx(expected, abs=1e-6)
    assert binned_ece(over, y) == pytest.approx(expected, abs=0.01)
    assert smooth_ece(over, y) == pytest.approx(expected, abs=0.01)
    assert smooth_ece(p, y) < 0.01
    assert consistency(p, smooth_ece(p, y), draws=100)["p_value"] > 0.05
    assert consistency(over, smooth_ece(over, y), draws=100)["p_value"] < 0.02


def test_the_kernel_keeps_unit_mass_and_the_fixed_point_is_where_ece_meets_the_bandwidth():
    for s in (0.003, 0.05, 0.5):
        K = kernel(s)
        assert trapezoid() @ K == pytest.approx(np.ones(K.shape[1]))
    # a made-up decreasing smECE_s curve crossing s at 0.1: the fixed point is interpolated there
    S = np.maximum(0.2 - SIGMAS, 0)[:, None]
    sig, val = fixed_point(S)
    assert sig[0] == pytest.approx(0.1, abs=1e-9) and val[0] == pytest.approx(0.1, abs=1e-9)


def test_brier_bins_and_risk_coverage_of_a_small_example_by_hand():
    # 2 images x 2 features
    P = np.array([[0.9, 0.2], [0.6, 0.05]])
    Y = np.array([[1, 0], [0, 0]])
    listed = np.array([[True, False], [True, False]])
    W = np.ones((3, 2))  # resamples equal to the sample: every CI collapses onto the value
    b = block(P, Y, listed, W)
    # Brier: (0.01 + 0.04 + 0.36 + 0.0025) / 4 = 0.103125
    assert b["brier"] == {"value": pytest.approx(0.103125), "ci_low": pytest.approx(0.103125),
                          "ci_high": pytest.approx(0.103125)}
    # bins: [0, 0.1): 0.05 (y 0); [0.2, 0.3): 0.2 (0); [0.6, 0.7): 0.6 (0); [0.9, 1]: 0.9 (1)
    # binned ECE = (0.05 + 0.2 + 0.6 + 0.1) / 4 = 0.2375
    assert b["binned_ece"]["value"] == pytest.approx(0.2375)
    assert [(x["n"], x["freq"]) for x in b["reliability"]["bins"] if x["n"]] == [(1, 0.0), (1, 0.0), (1, 0.0), (1, 1.0)]
    assert (b["cells"], b["images"], b["positives"]) == (4, 2, 1)
    # listed: 0.9 (right), 0.6 (wrong): keeping the most probable half, precision 1; all, 0.5
    rc = b["risk_coverage"]
    assert rc["coverage"] == [0.5, 1.0] and rc["precision"] == [1.0, 0.5] and rc["threshold"] == [0.9, 0.6]
    assert rc["precision_at"] == {"0.25": 1.0, "0.5": 1.0, "0.75": 0.5, "1": 0.5} and rc["area"] == 0.75
    assert risk_coverage(P, Y, np.zeros_like(listed))["listed"] == 0


def test_the_bootstrap_interval_covers_a_miscalibrated_predictors_value():
    rng = np.random.default_rng(1)
    n, F = 200, 53
    P = rng.beta(0.3, 3, size=(n, F))
    Y = rng.random((n, F)) < P
    over = np.clip(P * 1.5, 0, 1)
    W = rng.multinomial(n, [1 / n] * n, size=500).astype(float)
    b = block(over, Y, over > 0.5, W)
    sm = b["smooth_ece"]
    assert sm["ci_low"] < sm["value"] < sm["ci_high"] and sm["floor"]["p_value"] < 0.05
    assert sm["value"] > 3 * sm["floor"]["mean"]
    good = block(P, Y, P > 0.5, W)["smooth_ece"]
    assert good["value"] < sm["value"] / 3 and good["floor"]["p_value"] > 0.05

"""The per-feature Platt maps (fracdata/calibrate/fit.py) and calibration.json (fracdata/inference/calibration.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fracdata.calibrate.fit import calibrate, choose, fit, logits, loss, predict
from fracdata.errors import FracdataError
from fracdata.inference.calibration import Calibration, PlattMap, load_calibration, logit_of_logprob
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()


def overconfident(n, slopes, biases, seed=0):
    """Scores whose truth is sigmoid(slope * logit + bias) per feature (slope < 1: overconfident)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(-3, 4, size=(n, len(slopes)))
    Y = rng.random(Z.shape) < 1 / (1 + np.exp(-(np.array(slopes) * Z + np.array(biases))))
    return Z, Y.astype(float)


def test_the_gradient_is_the_losss():
    from scipy.optimize import check_grad

    Z, Y = overconfident(50, [0.5, 1.0, 2.0], [0.0, 1.0, -1.0])
    theta = np.random.default_rng(1).normal(0, 0.3, 2 + 2 * 3)
    err = check_grad(lambda t: loss(t, Z, Y, 3.0)[0], lambda t: loss(t, Z, Y, 3.0)[1], theta)
    assert err < 1e-4 * np.abs(loss(theta, Z, Y, 3.0)[1]).max()


def test_a_shared_temperature_is_recovered_and_chosen_when_every_feature_shares_it():
    Z, Y = overconfident(400, [1 / 3] * 4, [0.5] * 4)
    res = calibrate(Z, Y)
    s, b = res["theta"][:2]
    assert math.exp(s) == pytest.approx(1 / 3, abs=0.05) and b == pytest.approx(0.5, abs=0.25)
    assert res["lam"] >= 100  # cross-validation prefers (near) the shared map
    assert res["cv"][res["lam"]][0] < res["raw_logloss"] / 1.5  # held out, far better than the raw scores


def test_features_with_their_own_miscalibration_get_their_own_maps():
    slopes, biases = [0.2, 1.0, 3.0], [1.0, -1.0, 0.0]
    Z, Y = overconfident(3000, slopes, biases)
    res = calibrate(Z, Y)
    assert res["lam"] <= 10
    s, b, sf, bf = res["theta"][0], res["theta"][1], res["theta"][2:5], res["theta"][5:]
    assert np.exp(s + sf) == pytest.approx(slopes, rel=0.15)
    assert b + bf == pytest.approx(biases, abs=0.2)


def test_the_simplest_map_within_one_standard_error_of_the_best_is_chosen():
    cv = {0.1: (0.0414, 0.0010), 1.0: (0.0416, 0.0009), 10.0: (0.0425, 0.001), 100.0: (0.0426, 0.001), 1e6: (0.05, 0.001)}
    assert choose(cv) == 1.0  # 0.0416 <= 0.0414 + 0.0010 = 0.0424 < 0.0425
    assert choose({0.1: (0.03, 0.0), 1e6: (0.04, 0.0)}) == 0.1


def test_a_feature_with_three_positives_is_pulled_to_the_shared_map():
    Z, Y = overconfident(300, [0.4, 0.4, 0.4], [0.0, 0.0, 0.0])
    Y[:, 2] = 0
    Y[:3, 2] = 1  # feature 2: 3 positives among 300, wherever its scores are
    free = fit(Z, Y, 1e-6)
    shrunk = fit(Z, Y, 10.0)
    shared = math.exp(shrunk[0])
    # unshrunk, feature 2's slope runs off wherever its 3 points take it; shrunk, it stays near the shared one
    assert abs(math.exp(shrunk[0] + shrunk[4]) - shared) < abs(math.exp(free[0] + free[4]) - math.exp(free[0]))
    assert math.exp(shrunk[0] + shrunk[4]) == pytest.approx(shared, rel=0.5)


def test_calibration_json_applies_the_fitted_maps_in_logit_space():
    lp = {f: math.log(0.2) for f in TAX.ids}
    lp["river_pattern"] = math.log(0.99)
    cal = Calibration(shared=PlattMap(slope=0.5, bias=-1.0),
                      features={"river_pattern": PlattMap(slope=0.25, bias=0.0)},
                      shrinkage=1.0, cv={}, fitted_on={"dataset_dir": "d", "val_file": "val.json", "val_sha256": "0" * 64,
                                                      "val_images": 3, "val_ids_sha256": "1" * 64, "labels": "x"},
                      model={}, taxonomy={"version": TAX.version, "sha256": TAX.sha256}, created="now", fracdata="0")
    out = cal.apply(lp)
    # river_pattern: logit(0.99) = ln 99 = 4.59512; 0.25 * 4.59512 = 1.14878 -> 1 / (1 + e^-1.14878) = 0.759288
    assert out["river_pattern"] == pytest.approx(0.759288, abs=1e-6)
    # the rest (shared map): logit(0.2) = -1.38629; 0.5 * -1.38629 - 1 = -1.69315 -> 0.15528
    assert out["mist"] == pytest.approx(1 / (1 + math.exp(1.693147)), abs=1e-6)
    # the vectorised logit used in fitting is the same function, and an underflowed score stays finite
    assert logits(np.array([math.log(0.99), -1e4]))[0] == pytest.approx(logit_of_logprob(math.log(0.99)))
    assert logit_of_logprob(-1e4) == pytest.approx(math.log(1e-12), abs=1e-6)
    theta = np.array([math.log(0.5), -1.0, 0.0, 0.0])
    assert 1 / (1 + math.exp(-predict(theta, logits(np.array([[math.log(0.2)]])))[0, 0])) == pytest.approx(out["mist"], abs=1e-6)


def test_a_stale_or_foreign_calibration_file_is_one_error(tmp_path):
    p = tmp_path / "calibration.json"
    assert load_calibration(p, TAX) is None  # none there: uncalibrated, not an error
    p.write_text("{not json")
    with pytest.raises(FracdataError, match="not a calibration written by `fracdata calibrate`"):
        load_calibration(p, TAX)
    good = {"shared": {"slope": 1.0, "bias": 0.0}, "features": {}, "shrinkage": 1.0, "cv": {},
            "fitted_on": {"dataset_dir": "d", "val_file": "val.json", "val_sha256": "0" * 64, "val_images": 3,
                          "val_ids_sha256": "1" * 64, "labels": "x"},
            "model": {"prompt_sha256": "a" * 64}, "taxonomy": {"version": 1, "sha256": "f" * 64},
            "created": "now", "fracdata": "0"}
    p.write_text(json.dumps(good))
    with pytest.raises(FracdataError, match="fitted for taxonomy sha256 ffffffffffff"):
        load_calibration(p, TAX)
    good["taxonomy"]["sha256"] = TAX.sha256
    p.write_text(json.dumps(good))
    with pytest.raises(FracdataError, match="fitted with another prompt"):
        load_calibration(p, TAX, "b" * 64)
    assert load_calibration(p, TAX, "a" * 64).shared.slope == 1.0


def test_a_dataset_without_a_usable_val_split_is_one_error(tmp_path, capsys):
    from fracdata.cli import main

    assert main(["calibrate", "--model", "tiny-ft", "--dataset-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'val.json'} not found: --dataset-dir must be a folder `fracdata build` wrote\n"
    (tmp_path / "val.json").write_text("[]\n")
    assert main(["calibrate", "--model", "tiny-ft", "--dataset-dir", str(tmp_path)]) == 2
    assert "the val split is empty: rebuild with a larger --val-fraction to calibrate" in capsys.readouterr().err
    (tmp_path / "val.json").write_text('[{"messages": []}]\n')
    assert main(["calibrate", "--model", "tiny-ft", "--dataset-dir", str(tmp_path)]) == 2
    assert "not a val split written by fracdata build (StopIteration" in capsys.readouterr().err
    (tmp_path / "val.json").write_text('[{"id": "a", "images": ["images/a.png"], "messages": '
                                       '[{"role": "assistant", "content": "Features: mist"}]}]\n')
    assert main(["calibrate", "--model", "gpt-5.5", "--dataset-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: model gpt-5.5: kind 'openai-compatible'; calibration needs every "
                                              "feature's score, which only a local checkpoint gives")

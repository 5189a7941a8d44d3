"""fracbench.metrics on hand-made sets, checked against scikit-learn computed here."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, jaccard_score, precision_recall_fscore_support

from fracbench.data import GoldItem
from fracbench.metrics import bootstrap_weights, paired, score
from fracdata.agreement import annotator_agreement, cohen_kappa, indicator
from fracdata.answer import parse_answer
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()
F = ["dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "gas_pore", "fish_eye"]
GOLD = [["dimple_equiaxed"], ["cleavage_facet", "gas_pore"], ["ig_facet"], ["striation_ductile"],
        [], ["dimple_equiaxed", "gas_pore"], ["cleavage_facet"], ["striation_ductile", "gas_pore"]]
# Raw answers: right, partly right, wrong, malformed, empty, "none", and an unknown term.
RAW = ["Features: dimple_equiaxed", "Features: cleavage_facet", "Features: cleavage_facet, ig_facet",
       "{\"features\": [", "", "Features: none", "Features: dimples, gas pores, wibble", "I see nothing I know"]


def sk(gold, pred, average, labels):
    g, p = indicator(gold, F), indicator(pred, F)
    cols = [F.index(f) for f in labels]
    return precision_recall_fscore_support(g[:, cols], p[:, cols], average=average, zero_division=0)[:3]


def point(m, avg="micro"):
    return {k: m[avg][k]["value"] for k in ("precision", "recall", "f1")}


def test_parse_then_score_equals_sklearn():
    parsed = [parse_answer(r, TAX) for r in RAW]
    assert [p.status for p in parsed] == ["ok", "ok", "ok", "unparsed", "empty", "none", "ok", "unparsed"]
    pred = [p.labels for p in parsed]
    G, P = indicator(GOLD, F), indicator(pred, F)
    m, _ = score(G, P, F, bootstrap_weights(len(GOLD), 200, 0))
    present = [f for f in F if any(f in g for g in GOLD)]  # macro: features present in gold
    mp, mr, mf = sk(GOLD, pred, "micro", F)
    Mp, Mr, Mf = sk(GOLD, pred, "macro", present)
    got = point(m)
    assert [got[k] for k in ("precision", "recall", "f1")] == pytest.approx([mp, mr, mf])
    assert (m["macro"]["precision"]["value"], m["macro"]["recall"]["value"], m["macro"]["f1"]["value"]) == pytest.approx((Mp, Mr, Mf))
    # by hand: TP = 1 + 1 + 1 (images 1-3); predicted 1 + 1 + 2 + 2 = 6; gold 1+2+1+1+0+2+1+2 = 10
    assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((3 / 6, 3 / 10, 6 / 16))
    assert m["exact_match"]["value"] == pytest.approx(accuracy_score(G, P)) == 2 / 8
    assert m["jaccard"]["value"] == pytest.approx(jaccard_score(G, P, average="samples", zero_division=1.0))
    for j, f in enumerate(F):
        p, r, f1, s = precision_recall_fscore_support(G[:, j], P[:, j], average="binary", zero_division=0)
        if f in m["per_feature"]:
            v = m["per_feature"][f]
            assert (v["precision"]["value"], v["recall"]["value"], v["f1"]["value"]) == pytest.approx((p, r, f1))
            assert (v["support"], v["predicted"]) == (G[:, j].sum(), P[:, j].sum())
        else:
            assert G[:, j].sum() == P[:, j].sum() == 0
    assert m["n"] == 8 and m["labels_predicted"] == 6


def test_a_model_that_answers_nothing_scores_zero_never_one():
    pred = [[] for _ in GOLD]
    G, P = indicator(GOLD, F), indicator(pred, F)
    m, _ = score(G, P, F, bootstrap_weights(len(GOLD), 200, 0))
    assert point(m) == point(m, "macro") == dict.fromkeys(("precision", "recall", "f1"), 0.0)
    for avg in ("micro", "macro"):
        assert m[avg]["precision"] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert sk(GOLD, pred, "micro", F) == (0.0, 0.0, 0.0)
    assert m["exact_match"]["value"] == 1 / 8  # the one gold image with no feature
    assert m["jaccard"]["value"] == pytest.approx(jaccard_score(G, P, average="samples", zero_division=1.0)) == 1 / 8
    assert {f: v["predicted"] for f, v in m["per_feature"].items()} == dict.fromkeys(m["per_feature"], 0)


def test_bootstrap_is_seeded_and_brackets_the_point():
    rng = np.random.default_rng(1)
    G = rng.random((60, len(F))) < 0.3
    P = G ^ (rng.random((60, len(F))) < 0.2)  # 20% of cells flipped
    a, _ = score(G, P, F, bootstrap_weights(60, 500, seed=7))
    b, _ = score(G, P, F, bootstrap_weights(60, 500, seed=7))
    c, _ = score(G, P, F, bootstrap_weights(60, 500, seed=8))
    assert a == b and a["micro"]["f1"] != c["micro"]["f1"]
    for avg, k in product(("micro", "macro"), ("precision", "recall", "f1")):
        v = a[avg][k]
        assert v["ci_low"] < v["value"] < v["ci_high"], (avg, k, v)
    W = bootstrap_weights(60, 500, seed=7)
    assert W.shape == (500, 60) and (W.sum(1) == 60).all()  # each resample has 60 images
    perfect, _ = score(G, G, F, W)
    assert perfect["micro"]["f1"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}


def test_paired_approximate_randomisation_matches_the_exact_test():
    """On 8 images all 2^8 swaps can be enumerated: the exact p-value the sampled test estimates."""
    G = indicator(GOLD, F)
    A = indicator([["dimple_equiaxed"], ["cleavage_facet", "gas_pore"], ["ig_facet"], ["striation_ductile"], [],
                   ["dimple_equiaxed"], ["cleavage_facet"], ["striation_ductile"]], F)
    B = indicator([["dimple_equiaxed"], ["ig_facet"], [], ["gas_pore"], [], ["dimple_equiaxed"], [], []], F)
    W = bootstrap_weights(8, 1000, 0)
    ma, ba = score(G, A, F, W)
    mb, bb = score(G, B, F, W)
    res = paired(G, A, B, ba, bb, rounds=20000, seed=3)
    tpa, tpb = (G & A).sum(1), (G & B).sum(1)  # recall's denominator (gold count) is shared
    obs = (tpa - tpb).sum()
    exact = np.mean([abs(((1 - 2 * np.array(s)) * (tpa - tpb)).sum()) >= abs(obs) for s in product((0, 1), repeat=8)])
    r = res["micro_recall"]
    assert r["diff"] == pytest.approx(ma["micro"]["recall"]["value"] - mb["micro"]["recall"]["value"]) == pytest.approx(obs / G.sum())
    assert r["p_value"] == pytest.approx(exact, abs=0.01)
    assert r["ci_low"] <= r["diff"] <= r["ci_high"]
    same = paired(G, A, A, ba, ba, rounds=500, seed=0)
    assert all(v == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0} for v in same.values())
    assert set(res) == {"strict_jaccard", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "exact_match",
                        "jaccard"}


def test_paired_detects_a_clearly_better_model():
    rng = np.random.default_rng(0)
    G = rng.random((100, len(F))) < 0.3
    good = G ^ (rng.random(G.shape) < 0.05)
    bad = G ^ (rng.random(G.shape) < 0.4)
    W = bootstrap_weights(100, 1000, 0)
    (_, bg), (_, bb) = score(G, good, F, W), score(G, bad, F, W)
    res = paired(G, good, bad, bg, bb, rounds=2000, seed=0)["micro_f1"]
    assert res["diff"] > 0.3 and res["ci_low"] > 0 and res["p_value"] == 1 / 2001


def test_cohen_kappa_equals_sklearn_and_annotator_pairs():
    a = [["dimple_equiaxed"], ["cleavage_facet", "gas_pore"], ["ig_facet"], [], ["gas_pore"]]
    b = [["dimple_equiaxed"], ["cleavage_facet"], ["ig_facet", "gas_pore"], [], ["gas_pore"]]
    items = [GoldItem(str(i), None, (), {"ann1": tuple(x), "ann2": tuple(y)}) for i, (x, y) in enumerate(zip(a, b))]
    items.append(GoldItem("solo", None, (), {"ann1": ("fish_eye",)}))  # one annotator only: not in the pair
    got = annotator_agreement(items, TAX.ids)
    used = ["dimple_equiaxed", "cleavage_facet", "ig_facet", "gas_pore"]
    xa, xb = indicator(a, used).ravel(), indicator(b, used).ravel()
    assert got == [{"a": "ann1", "b": "ann2", "n_images": 5, "n_features": 4,
                    "kappa": pytest.approx(cohen_kappa_score(xa, xb)), "exact_agreement": 3 / 5}]
    assert cohen_kappa(xa, xa) == pytest.approx(1.0)
    assert cohen_kappa([True, True], [True, True]) is None  # chance agreement 1: undefined, not 1

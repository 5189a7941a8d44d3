"""The scoring conventions a reviewer would check: hallucinations lower macro, abstaining is not
free (coverage and strict scores), CIs cluster by paper, paired tests are Holm-adjusted, and a
labels file (the teacher) is scored as a model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from fracbench.cli import main
from fracbench.metrics import bootstrap_weights, cluster_index, holm, score
from fracdata.agreement import indicator
from tests.support.bench_kit import gold_set, labels_entry, labels_file

F = ["dimple_equiaxed", "cleavage_facet", "ig_facet", "gas_pore", "fish_eye", "secondary_crack"]


def sk_macro(G, P):
    """scikit-learn's macro P/R/F1 over the union of the labels in gold and predictions."""
    union = np.flatnonzero((G | P).any(0))
    return precision_recall_fscore_support(G[:, union], P[:, union], average="macro", zero_division=0)[:3]


def values(m, avg):
    return tuple(m[avg][k]["value"] for k in ("precision", "recall", "f1"))


def test_a_hallucinated_feature_lowers_macro_as_sklearn_over_the_union():
    gold = [["dimple_equiaxed"], ["cleavage_facet"], ["dimple_equiaxed"], ["cleavage_facet"]]
    # perfect, plus two features gold never has: fish_eye on image 1, gas_pore on image 2
    pred = [["dimple_equiaxed", "fish_eye"], ["cleavage_facet", "gas_pore"], ["dimple_equiaxed"], ["cleavage_facet"]]
    G, P = indicator(gold, F), indicator(pred, F)
    m, _ = score(G, P, F, bootstrap_weights(4, 200, 0))
    # union = {dimple, cleavage, gas_pore, fish_eye}: precision 1, 1, 0, 0 -> 0.5 (gold-only labels gave 1.0)
    assert values(m, "macro") == pytest.approx(sk_macro(G, P))
    assert values(m, "macro") == pytest.approx((0.5, 0.5, 0.5))
    present = [F.index("dimple_equiaxed"), F.index("cleavage_facet")]
    old = precision_recall_fscore_support(G[:, present], P[:, present], average="macro", zero_division=0)[0]
    assert old == 1.0  # the convention this replaces
    assert values(m, "micro") == pytest.approx((4 / 6, 1.0, 0.8))
    assert set(m["per_feature"]) == {"dimple_equiaxed", "cleavage_facet", "gas_pore", "fish_eye"}


def test_every_bootstrap_resample_uses_the_union_of_that_resample():
    rng = np.random.default_rng(5)
    G = rng.random((30, len(F))) < 0.25
    P = G ^ (rng.random(G.shape) < 0.2)
    P[:, F.index("fish_eye")] = False
    G[:, F.index("fish_eye")] = False
    P[3, F.index("fish_eye")] = True  # a hallucination that only some resamples contain
    W = bootstrap_weights(30, 40, seed=2)
    _, boot = score(G, P, F, W)
    with_it = 0
    for b in range(40):
        idx = np.repeat(np.arange(30), W[b].astype(int))  # the resample as a benchmark of repeated images
        assert (boot["macro"]["precision"][b], boot["macro"]["recall"][b], boot["macro"]["f1"][b]) == \
            pytest.approx(sk_macro(G[idx], P[idx]))
        with_it += 3 in idx
    assert 0 < with_it < 40  # both kinds of resample were checked


def test_strict_scores_count_a_failed_answer_as_wrong_by_hand():
    gold = [["dimple_equiaxed"]] * 4 + [[]]
    pred = [[], [], [], ["dimple_equiaxed"], []]
    miss = [1, 1, 1, 0, 1]  # images 1-3 and the empty-gold image 5 failed
    G, P = indicator(gold, F), indicator(pred, F)
    m, _ = score(G, P, F, bootstrap_weights(5, 200, 0), miss)
    assert values(m, "micro") == pytest.approx((1.0, 0.25, 0.4))  # lenient: 1 TP, 0 FP, 3 FN
    # strict: 4 failed items = 4 false positives: P 1/5, R 1/4, F1 2/(2 + 4 + 3)
    assert values(m["strict"], "micro") == pytest.approx((1 / 5, 1 / 4, 2 / 9))
    assert values(m["strict"], "macro") == pytest.approx((1 / 5, 1 / 4, 2 / 9))  # one feature: k = 1
    assert m["exact_match"]["value"] == pytest.approx(2 / 5)  # image 4, and image 5 (empty = empty)
    assert m["strict"]["exact_match"]["value"] == m["strict"]["jaccard"]["value"] == pytest.approx(1 / 5)
    # macro with k = 2 features: each failure adds 1/2 FP to each; dimple: TP 1, FP 2 -> 1/3; gas_pore: 1 FP, 1 gold
    gold2 = [["dimple_equiaxed"], ["dimple_equiaxed"], ["gas_pore"], ["dimple_equiaxed"]]
    pred2 = [["dimple_equiaxed"], [], ["dimple_equiaxed"], []]
    m2, _ = score(indicator(gold2, F), indicator(pred2, F), F, bootstrap_weights(4, 200, 0), [0, 1, 0, 1])
    p_d, p_g = 1 / (1 + 1 + 1), 0 / (0 + 1)  # dimple: tp 1, fp 1 + 2 * 1/2; gas_pore: fp 2 * 1/2
    assert m2["strict"]["macro"]["precision"]["value"] == pytest.approx((p_d + p_g) / 2)
    assert m2["macro"]["precision"]["value"] == pytest.approx((1 / 2 + 0) / 2)


def test_holm_against_hand_values():
    # sorted 0.005 0.01 0.03 0.04 -> x4 x3 x2 x1 = 0.02 0.03 0.06 0.04 -> running max 0.02 0.03 0.06 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, order kept
    assert holm([0.02, 0.02, 0.5]) == pytest.approx([0.06, 0.06, 0.5])
    assert holm([]) == []


def run_labels(tmp_path, gold, entries, capsys, out="out"):
    assert main(["run", "--models", *entries, "--gold", str(gold), "--out", str(tmp_path / out),
                 "--cache", str(tmp_path / "c.sqlite")]) == 0
    return json.loads((tmp_path / out / "metrics.json").read_text()), capsys.readouterr().out


def test_a_model_right_on_one_of_four_shows_coverage_and_a_strict_precision(tmp_path, capsys):
    feats = [["dimple_equiaxed"], ["cleavage_facet", "gas_pore"], ["ig_facet"], ["gas_pore"]]
    gold, ids = gold_set(tmp_path / "g", feats)
    # answers image 1 correctly; no label for images 2 and 3 (failed); image 4 "wibble" (unparsed)
    few = labels_file(tmp_path / "few.jsonl", {ids[0]: ["dimple_equiaxed"], ids[3]: ["wibble"]})
    one = labels_file(tmp_path / "one.jsonl", {ids[0]: ["dimple_equiaxed"]})
    entries = [labels_entry(tmp_path, "one-of-four", one), labels_entry(tmp_path, "unparsed-too", few)]
    m, printed = run_labels(tmp_path, gold, entries, capsys)
    a, b = m["models"]["one-of-four"], m["models"]["unparsed-too"]
    assert a["coverage"] == {"n": 4, "answered": 1, "failed": 3, "unparsed": 0}
    assert b["coverage"] == {"n": 4, "answered": 1, "failed": 2, "unparsed": 1}
    assert a["micro"]["precision"]["value"] == 1.0 and a["micro"]["recall"]["value"] == 0.2
    assert a["strict"]["micro"]["precision"]["value"] == 0.25  # 1 TP, 3 failed = 3 FP
    assert a["strict"]["micro"]["recall"]["value"] == 0.2 and a["strict"] == b["strict"]
    assert a["kind"] == "labels" and b["unknown_terms"] == {"wibble": 1}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| one-of-four | 4 | 1.000 [0.000, 1.000] | 1/4 (3 failed) |" in md
    assert "| unparsed-too | 4 | 1.000 [0.000, 1.000] | 1/4 (2 failed, 1 unparsed) |" in md
    strict, headline = md.split("### Strict")[1], md.split("## Headline")[1].split("## All metrics")[0]
    assert strict.count("| one-of-four | 4 | 0.250 [") == 1  # the strict table
    # the headline, strict Jaccard: 1 right of 4 = 0.25, coverage and abstention beside it
    assert "| one-of-four | 4 | 0.250 [0.000, 0.750] | 1/4 (3 failed) | 0/4 | 0/0 | 1.000 [0.000, 1.000] |" in headline
    assert "### Strict: a failed or unparsed answer is a wrong answer" in md
    assert ("Macro averages over the union of the features in gold and in the model's predictions "
            '(scikit-learn `average="macro"`, `labels` = that union)') in md
    assert ("Values are point estimates with 95% CIs: percentile bootstrap over images (2000 resamples, seed 0); "
            "the gold records carry no `source`") in md
    with open(tmp_path / "out" / "table.csv") as f:
        table = {r["model"]: r for r in csv.DictReader(f)}
    head = list(table["one-of-four"])
    assert head[head.index("micro_precision_ci_high") + 1: head.index("micro_precision_ci_high") + 5] == [
        "coverage", "answered", "failed", "unparsed"]
    assert (float(table["one-of-four"]["coverage"]), table["one-of-four"]["failed"]) == (0.25, "3")
    assert float(table["one-of-four"]["strict_micro_precision"]) == 0.25
    assert "one-of-four" in printed and "coverage 1/4  strict P 0.250" in printed
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions" / "one-of-four.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "failed"]
    assert rows[1]["error"] == f"no label for this id in {one}"


def test_labels_row_of_the_oracle_scores_exactly_one(synth_small, tmp_path, capsys):
    """The plumbing test: the gold set's own labels, as a labels file, score 1.0 everywhere."""
    from fracdata.records import GoldRecord, read_jsonl

    gold = synth_small / "gold.jsonl"
    recs = [r for _, r in read_jsonl(gold, GoldRecord, "test")]
    oracle = labels_file(tmp_path / "oracle.jsonl", {r.id: r.features for r in recs})
    m, printed = run_labels(tmp_path, gold, [labels_entry(tmp_path, "oracle", oracle)], capsys)
    o = m["models"]["oracle"]
    for block in (o, o["strict"]):
        for avg in ("micro", "macro"):
            assert all(block[avg][k] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0} for k in ("precision", "recall", "f1"))
        assert block["exact_match"]["value"] == block["jaccard"]["value"] == 1.0
    assert o["coverage"] == {"n": 30, "answered": 30, "failed": 0, "unparsed": 0}
    assert m["provenance"]["models"]["oracle"]["identity"]["labelers"] == {"gpt-5.2": 30}
    assert f"rows from labels file {oracle} (30 labels, 0 gold ids without one;" in printed


def test_clustered_bootstrap_is_wider_on_gold_clustered_by_paper(tmp_path, capsys):
    """20 papers x 6 images; the model is right on every image of 10 papers and wrong on the others."""
    papers = [f"10.5555/TEST.{p:02d}" for p in range(20) for _ in range(6)]
    feats = [["dimple_equiaxed"]] * 120
    gold, ids = gold_set(tmp_path / "g", feats, papers)
    ans = {i: ["dimple_equiaxed"] if int(papers[k][-2:]) % 2 else ["cleavage_facet"] for k, i in enumerate(ids)}
    model = labels_file(tmp_path / "m.jsonl", ans)
    m, printed = run_labels(tmp_path, gold, [labels_entry(tmp_path, "m", model)], capsys)
    gold_plain, _ = gold_set(tmp_path / "g2", feats)  # the same images without sources
    m2, _ = run_labels(tmp_path, gold_plain, [labels_entry(tmp_path, "m", model)], capsys, out="out2")
    clustered, per_image = m["models"]["m"]["micro"]["precision"], m2["models"]["m"]["micro"]["precision"]
    assert clustered["value"] == per_image["value"] == 0.5
    w_c, w_i = clustered["ci_high"] - clustered["ci_low"], per_image["ci_high"] - per_image["ci_low"]
    # binomial: per image sqrt(.25/120) = 0.046 -> width ~0.18; per paper sqrt(.25/20) = 0.11 -> ~0.43 (0.4-0.5 in 1/20 steps)
    assert 0.14 < w_i < 0.22 and 0.35 < w_c <= 0.55 and w_c > 2 * w_i, (w_c, w_i)
    assert m["provenance"]["resampling"] == {"unit": "source paper", "clusters": 20, "images": 120, "without_source": 0,
                                             "with_parent": 0}
    assert m2["provenance"]["resampling"] == {"unit": "image", "clusters": 120, "images": 120, "without_source": 120,
                                              "with_parent": 0}
    assert "bootstrap over 20 source papers" in printed
    assert "95% CIs: percentile bootstrap over the 20 source papers of the 120 images (clustered" in \
        (tmp_path / "out" / "report.md").read_text()


def test_cluster_weights_move_whole_papers():
    clusters = cluster_index(["a", "a", "b", "c", "c", "c"])
    assert clusters.tolist() == [0, 0, 1, 2, 2, 2]
    W = bootstrap_weights(6, 300, 1, clusters)
    assert (W[:, 0] == W[:, 1]).all() and (W[:, 3] == W[:, 4]).all() and (W[:, 4] == W[:, 5]).all()
    assert set(np.unique(W[:, 0])) <= {0, 1, 2, 3} and len(set(W.sum(1))) > 1  # 3 papers drawn, sizes vary
    assert (bootstrap_weights(6, 300, 1) == bootstrap_weights(6, 300, 1, None)).all()


def test_paired_tests_carry_holm_over_the_whole_family(tmp_path, capsys):
    feats = [["dimple_equiaxed"], ["gas_pore"], ["ig_facet"], ["dimple_equiaxed", "gas_pore"]] * 5
    gold, ids = gold_set(tmp_path / "g", feats)
    perfect = labels_file(tmp_path / "a.jsonl", dict(zip(ids, feats)))
    half = labels_file(tmp_path / "b.jsonl", {i: f if k % 2 else ["cleavage_facet"] for k, (i, f) in enumerate(zip(ids, feats))})
    nothing = labels_file(tmp_path / "c.jsonl", {})
    entries = [labels_entry(tmp_path, n, p) for n, p in (("a", perfect), ("b", half), ("c", nothing))]
    m, _ = run_labels(tmp_path, gold, entries, capsys)
    family = [v for p in m["paired"] for v in p["metrics"].values()]
    assert len(family) == 3 * 7  # the headline (strict Jaccard) and the six others, per pair
    assert [v["p_holm"] for v in family] == pytest.approx(holm([v["p_value"] for v in family]))
    assert all(v["p_holm"] >= v["p_value"] for v in family) and any(v["p_holm"] > v["p_value"] for v in family)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Holm's adjustment over all 21 tests of this report." in md and "| p | p (Holm) |" in md
    with open(tmp_path / "out" / "paired.csv") as f:
        assert [float(r["p_holm"]) for r in csv.DictReader(f)] == [v["p_holm"] for v in family]


def test_labels_entries_fail_with_one_line(tmp_path, capsys):
    gold, ids = gold_set(tmp_path / "g", [["gas_pore"], ["ig_facet"]])
    missing = labels_entry(tmp_path, "missing", tmp_path / "nope.jsonl")
    assert main(["run", "--models", missing, "--gold", str(gold), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'nope.jsonl'}: labels file not found (write it with "
                                       f"`fracdata label --gold GOLD --out {tmp_path / 'nope.jsonl'}`)\n")
    bad = tmp_path / "bad.jsonl"
    labels_file(bad, {ids[0]: ["gas_pore"]})
    bad.write_text(bad.read_text() + "{not json\n" + bad.read_text())
    entry = labels_entry(tmp_path, "bad", bad)
    assert main(["run", "--models", entry, "--gold", str(gold), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:2: malformed_json (")
    bad.write_text("\n".join(bad.read_text().splitlines()[::2]) + "\n")  # the same id twice
    assert main(["run", "--models", entry, "--gold", str(gold), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: {bad}:2: second label for id {ids[0][:12]}… (first on line 1)\n"
    assert main(["run", "--models", entry, "--blank", "bad", "--gold", str(gold), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "error: --blank bad: a `labels` entry reads no image, so it has no blank-image control\n"
    extra = tmp_path / "extra.yaml"
    extra.write_text(f"kind: labels\npath: {bad}\nadapter: x\n")
    assert main(["run", "--models", str(extra), "--gold", str(gold), "--out", str(tmp_path / "o")]) == 2
    assert "['adapter'] do not apply to kind 'labels' (it takes only name and path)" in capsys.readouterr().err

"""Dawid-Skene per feature and `fracdata labels aggregate`: rates, posteriors, audits, correlated errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fracdata.cli import main
from fracdata.label import dawid_skene as ds
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()


def _simulate(n, pi, se, sp, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < pi
    u = rng.random((n, len(se)))
    Y = np.where(z[:, None], u < np.array(se), u >= np.array(sp)).astype(float)
    M = (rng.random((n, len(se))) >= missing).astype(float)
    M[M.sum(1) == 0, 0] = 1.0
    return z, Y, M


def test_majority_vote_counts_only_the_answers_given_and_ties_are_one_half():
    Y = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]], float)
    M = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]], float)
    assert ds.majority(Y, M).tolist() == [1.0, 0.0, 0.5, 1.0]


def test_dawid_skene_recovers_each_labellers_rates_and_beats_the_majority_vote():
    se, sp = (0.95, 0.75, 0.65), (0.97, 0.85, 0.80)
    z, Y, M = _simulate(6000, 0.3, se, sp, seed=1, missing=0.1)
    T, pi, se_hat, sp_hat, rounds = ds.dawid_skene(Y, M)
    assert pi == pytest.approx(0.3, abs=0.02)
    # latent-class estimates vary more than counts against a known truth: 0.033 off at n = 6000, seed 1
    assert np.abs(se_hat - se).max() < 0.05 and np.abs(sp_hat - sp).max() < 0.05
    assert 1 < rounds < ds.MAX_ROUNDS
    acc_ds = ((T >= 0.5) == z).mean()
    acc_mv = ((ds.majority(Y, M) > 0.5) == z).mean()
    assert acc_ds > acc_mv + 0.01  # the good labeller outvotes two weak ones where they are wrong


def test_a_unanimous_panel_gives_certain_posteriors_and_rates_at_the_clip():
    Y = np.array([[1, 1], [0, 0], [1, 1], [0, 0]], float)
    T, pi, se, sp, _ = ds.dawid_skene(Y, np.ones_like(Y))
    assert (T >= 0.5).tolist() == [True, False, True, False] and T.min() < 1e-5 and T.max() > 1 - 1e-5
    assert se.tolist() == [1 - ds.SMOOTH] * 2 and sp.tolist() == [1 - ds.SMOOTH] * 2 and pi == 0.5


def test_rates_and_error_correlation_by_hand():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    y = np.array([1, 0, 1, 1, 0, 0, 0, 0], bool)
    assert ds.rates(y, truth, np.ones(8, bool)) == (2 / 3, 4 / 5, 3, 5)
    # labellers 0 and 1 err on the same two images, labeller 2 on two others
    Y = np.stack([truth ^ np.isin(np.arange(8), [1, 3]), truth ^ np.isin(np.arange(8), [1, 3]),
                  truth ^ np.isin(np.arange(8), [0, 5])], 1)
    c = ds.error_correlation(Y, np.ones_like(Y), truth, np.ones(8, bool))
    assert c[(0, 1, "positives")] == (pytest.approx(1.0), 3, 1, 1) and c[(0, 1, "negatives")] == (pytest.approx(1.0), 5, 1, 1)
    # positives: e0 = [0,1,0], e2 = [1,0,0]: cov = 0 - 1/9, var = 2/9 -> -1/2; negatives: e0 = [1,0,0,0,0],
    # e2 = [0,0,1,0,0]: cov = 0 - 0.04, var = 0.16 -> -1/4
    assert c[(0, 2, "positives")][0] == pytest.approx(-0.5) and c[(0, 2, "negatives")][0] == pytest.approx(-0.25)
    # a labeller always wrong on a class has no correlation to give there
    always = np.stack([~truth, truth], 1)
    assert ds.error_correlation(always, np.ones_like(always), truth, np.ones(8, bool))[(0, 1, "positives")][0] is None


def _write(path, ids, sets, model, kind="gpt", extra=()):
    rows = [{"id": i, "features": list(f), "labeler": {"kind": kind, "model": model}} for i, f in zip(ids, sets)]
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *extra]))
    return path


def _ids(n):
    return [f"{k:064x}" for k in range(1, n + 1)]


def test_aggregate_writes_labels_rates_audit_checks_and_warns_on_shared_errors(tmp_path, capsys):
    ids = _ids(40)
    truth = [["ig_facet"] if k % 4 == 0 else ["dimple_equiaxed"] for k in range(40)]
    good = list(truth)
    # a and b make the same 6 errors (ig_facet called cleavage_facet); c is right everywhere
    shared = {0, 4, 8, 12, 16, 20}
    bad = [["cleavage_facet"] if k in shared else f for k, f in enumerate(truth)]
    a = _write(tmp_path / "a.jsonl", ids, bad, "model-a",
               extra=[{"id": ids[0], "features": ["ig_facet"], "labeler": {"kind": "gpt", "model": "model-a"}},
                      {"id": "f" * 64, "features": ["banana"], "labeler": {"kind": "gpt", "model": "model-a"}}])
    b = _write(tmp_path / "b.jsonl", ids, bad, "model-b")
    c = _write(tmp_path / "c.jsonl", ids, good, "model-c")
    human = _write(tmp_path / "human.jsonl", ids[:32], truth[:32], None, kind="human")
    out = tmp_path / "agg" / "labels.jsonl"
    assert main(["labels", "aggregate", "--labels", str(a), str(b), str(c), "--out", str(out), "--audit", str(human)]) == 0
    text = capsys.readouterr().out
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in recs] == ids
    assert recs[0]["labeler"] == {"kind": "aggregate", "model": "dawid-skene", "taxonomy_version": TAX.version,
                                  "sources": ["model-a", "model-b", "model-c"]}
    # two labellers that share an error outvote the third: the aggregate takes their mistake
    assert [r["features"] for r in recs] == [["cleavage_facet"] if k in shared else truth[k] for k in range(40)]
    rep = json.loads((tmp_path / "agg" / "labels.labellers.json").read_text())
    ig = rep["features"]["ig_facet"]
    # the audit (32 images, 8 with ig_facet, 6 of them among the shared errors) shows what the model cannot
    assert ig["labellers"]["model-a"]["audit"] == {"sensitivity": 0.25, "specificity": 1.0, "positives": 8, "negatives": 24}
    assert ig["labellers"]["model-c"]["audit"] == {"sensitivity": 1.0, "specificity": 1.0, "positives": 8, "negatives": 24}
    assert ig["aggregate_vs_audit"]["sensitivity"] == 0.25
    assert ig["labellers"]["model-a"]["sensitivity"] > 0.99  # the model, seeing only answers, trusts the pair
    assert ("warning: ig_facet: the errors of model-a and model-b are correlated (phi 1.00 over the 8 positives of the "
            "audit; 6 and 6 errors)") in text
    # the estimates checked against the audit where it has >= 10 images of a class (ig_facet's 8 positives are
    # too few): the model thinks model-c, the one right labeller, raises 6 false ig_facets in 36 negatives
    # (specificity 30/36 = 0.833); the audit measures 1.0
    assert ("model-c: estimates vs audit over 3 rates with >= 10 audited images: largest gap 0.167 (specificity of "
            "ig_facet)") in text
    assert text.count("warning: ") == 2  # the same pair on cleavage_facet's negatives; never with model-c
    rejects = [json.loads(x) for x in (tmp_path / "agg" / "labels.rejects.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in rejects) == ["duplicate_label", "unknown_feature"]
    assert "wrote " + str(out) + ": 40 labels (dawid-skene, labeler kind aggregate)" in text
    # the builder takes it like any labels file; a human label still overrides it
    from fracdata.dataset.inputs import Ledger, read_labels

    ledger = Ledger()
    chosen = read_labels([(out, False), (human, False)], TAX, ledger)
    assert chosen[ids[39]].kind == "aggregate" and chosen[ids[0]].kind == "human"
    assert ledger.rejected("labels") == {"overridden_by_human": 32}


def test_aggregate_refuses_one_file_and_an_output_over_an_input(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", _ids(2), [[], []], "m")
    assert main(["labels", "aggregate", "--labels", str(a), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "two or more files" in capsys.readouterr().err
    b = _write(tmp_path / "b.jsonl", _ids(2), [[], []], "n")
    assert main(["labels", "aggregate", "--labels", str(a), str(b), "--out", str(a)]) == 2
    assert capsys.readouterr().err == f"error: {a}: --out is one of the inputs; write the aggregate to another file\n"
    assert main(["labels", "aggregate", "--labels", str(a), str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.jsonl'}: labels file not found\n"


def test_majority_method_and_not_a_fracture_surface_is_aggregated_too(tmp_path):
    ids = _ids(3)
    rows = lambda m, neg: [{"id": i, "features": [] if k in neg else ["gas_pore"], "labeler": {"kind": "gpt", "model": m},
                            **({"image_type": "not a fracture surface"} if k in neg else {})} for k, i in enumerate(ids)]
    files = []
    for m, neg in (("x", {0}), ("y", {0, 1}), ("z", set())):
        p = tmp_path / f"{m}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows(m, neg)))
        files.append(str(p))
    out = tmp_path / "agg.jsonl"
    assert main(["labels", "aggregate", "--labels", *files, "--out", str(out), "--method", "majority"]) == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["features"], r.get("image_type")) for r in recs] == [
        ([], "not a fracture surface"), (["gas_pore"], None), (["gas_pore"], None)]
    assert recs[0]["labeler"]["model"] == "majority"

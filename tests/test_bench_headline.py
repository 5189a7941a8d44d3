"""The headline metric abstaining cannot win, abstention counted beside coverage, tiles of one
micrograph resampled together, and error bars drawn as the intervals are (issue 25; 22's bootstrap)."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
from PIL import Image

from fracbench.cli import main as fracbench
from fracbench.metrics import bootstrap_weights, indicator, paired, score
from fracdata.cli import main as fracdata
from tests.support.bench_kit import gold_set, labels_entry, labels_file

F = ["dimple_equiaxed", "cleavage_facet", "ig_facet", "gas_pore", "fish_eye", "secondary_crack"]


def run(tmp_path, gold, entries, out="out"):
    assert fracbench(["run", "--models", *entries, "--gold", str(gold), "--out", str(tmp_path / out),
                      "--cache", str(tmp_path / "c.sqlite")]) == 0
    return json.loads((tmp_path / out / "metrics.json").read_text())


def read(path):
    return {r["id"]: r["features"] for r in map(json.loads, path.read_text().splitlines())}


def test_the_teacher_answering_none_on_its_wrong_images_does_not_win(tmp_path, capsys):
    """The demo's gold (200 images, seed 0) and its simulated teacher (84% agreement: 32 wrong
    images, one feature replaced on each); the abstainer answers "none" on exactly those 32."""
    synth = tmp_path / "s"
    assert fracdata(["synth", "--out", str(synth), "--seed", "0", "--n", "60", "--n-gold", "200", "--n-manual", "4",
                     "--teacher-errors", "random"]) == 0
    gold, honest = read(synth / "gold.jsonl"), read(synth / "teacher" / "random.gold.jsonl")
    wrong = [i for i in gold if sorted(honest[i]) != sorted(gold[i])]
    assert len(wrong) == 32 and all(gold[i] for i in gold)  # every gold image has features
    abstainer = labels_file(tmp_path / "abstain.jsonl", {i: ([] if i in wrong else f) for i, f in honest.items()})
    entries = [labels_entry(tmp_path, "honest", synth / "teacher" / "random.gold.jsonl"),
               labels_entry(tmp_path, "abstain", abstainer)]
    m = run(tmp_path, synth / "gold.jsonl", entries)
    h, a = m["models"]["honest"], m["models"]["abstain"]
    # what the issue measured: under the paper's metric abstaining wins outright
    # (255 gold features; the honest teacher replaced one on each wrong image: 223 TP, 32 FP)
    assert (a["micro"]["precision"]["value"], h["micro"]["precision"]["value"]) == (1.0, pytest.approx(223 / 255))
    assert a["micro"]["f1"]["value"] > h["micro"]["f1"]["value"]
    # the headline: a wrong image scores |P & G| / |P | G| for the honest teacher (1/3 when one of
    # two features was replaced, 0 when the only one was) and 0 for "none"
    partial = sum(len(set(honest[i]) & set(gold[i])) / len(set(honest[i]) | set(gold[i])) for i in wrong)
    assert partial == pytest.approx(14 / 3)  # 14 of the 32 wrong images had two features (issue 22's corpus draws)
    assert h["strict"]["jaccard"]["value"] == pytest.approx((168 + partial) / 200)
    assert a["strict"]["jaccard"]["value"] == pytest.approx(168 / 200)
    assert m["headline"] == "strict_jaccard"
    (pair,) = m["paired"]
    d = pair["metrics"]["strict_jaccard"]
    sign = 1 if pair["a"] == "abstain" else -1  # abstain - honest
    assert sign * d["diff"] == pytest.approx(-partial / 200)  # never in the abstainer's favour
    assert d["p_holm"] >= d["p_value"] and list(pair["metrics"])[0] == "strict_jaccard"
    # abstention is visible: 32 "none" answers on images whose gold has features
    assert a["abstention"] == {"featured": 200, "none_on_featured": 32, "gold_none": 0, "features_on_none": 0}
    assert h["abstention"]["none_on_featured"] == 0 and a["coverage"]["answered"] == 200
    md = (tmp_path / "out" / "report.md").read_text()
    headline = md.split("## Headline")[1].split("## All metrics")[0]
    assert (f"| abstain | 200 | {a['strict']['jaccard']['value']:.3f} [") in headline
    assert "| 200/200 | 32/200 | 0/0 | 1.000 [1.000, 1.000] |" in headline  # coverage, none on featured, paper's P
    assert "micro precision (the paper's metric)" in md
    # per image the abstainer never scores above the honest teacher, so no resample favours it either
    assert max(sign * d["ci_low"], sign * d["ci_high"]) <= 0
    assert f"| {pair['a']} | {pair['b']} | {d['diff']:+.3f} [" in headline
    printed = capsys.readouterr().out
    assert 'headline strict Jaccard 0.840, "none" on 32/200 images with features' in printed
    assert (tmp_path / "out" / "comparison.png").is_file() and (tmp_path / "out" / "per_feature.png").is_file()


def test_the_headline_paired_test_is_the_exact_randomisation_test_on_per_image_jaccard():
    """8 images, all 2^8 swaps enumerated: strict Jaccard's difference is a mean of per-image
    differences, so swapping image i flips the sign of d_i."""
    gold = [["dimple_equiaxed"], ["cleavage_facet", "gas_pore"], ["ig_facet"], ["gas_pore"], [],
            ["dimple_equiaxed", "fish_eye"], ["cleavage_facet"], ["secondary_crack"]]
    a = [["dimple_equiaxed"], ["cleavage_facet"], ["ig_facet"], [], [], ["dimple_equiaxed"], ["cleavage_facet"], []]
    b = [[], ["cleavage_facet", "gas_pore", "ig_facet"], [], ["gas_pore"], ["gas_pore"], [], ["ig_facet"], []]
    miss_b = [1, 0, 0, 0, 0, 0, 0, 1]  # b failed on images 1 and 8
    G, A, B = indicator(gold, F), indicator(a, F), indicator(b, F)
    W = bootstrap_weights(8, 500, 0)
    ma, ba = score(G, A, F, W)
    mb, bb = score(G, B, F, W, miss_b)
    ja = np.array([1, 1 / 2, 1, 0, 1, 1 / 2, 1, 0])
    jb = np.array([0, 2 / 3, 0, 1, 0, 0, 0, 0])  # image 5: gold none, b said gas_pore -> 0
    assert ma["strict"]["jaccard"]["value"] == pytest.approx(ja.mean())
    assert mb["strict"]["jaccard"]["value"] == pytest.approx(jb.mean())
    res = paired(G, A, B, ba, bb, rounds=20000, seed=1, miss_b=miss_b)["strict_jaccard"]
    d = ja - jb
    exact = np.mean([abs(((1 - 2 * np.array(s)) * d).sum()) >= abs(d.sum()) - 1e-12 for s in product((0, 1), repeat=8)])
    assert res["diff"] == pytest.approx(d.mean())
    assert res["p_value"] == pytest.approx(exact, abs=0.01)


def test_tiles_of_one_micrograph_resample_together_and_widen_the_ci(tmp_path):
    """20 micrographs x 6 tiles, no papers; the model is right on every tile of 10 micrographs."""
    parents = [f"raw/field-{p:02d}.tif" for p in range(20) for _ in range(6)]
    feats = [["dimple_equiaxed"]] * 120
    gold, ids = gold_set(tmp_path / "g", feats, parents=parents)
    ans = {i: ["dimple_equiaxed"] if int(parents[k][-6:-4]) % 2 else ["cleavage_facet"] for k, i in enumerate(ids)}
    entry = labels_entry(tmp_path, "m", labels_file(tmp_path / "m.jsonl", ans))
    m = run(tmp_path, gold, [entry])
    plain, _ = gold_set(tmp_path / "g2", feats)  # the same images, parents not recorded
    m2 = run(tmp_path, plain, [entry], out="out2")
    tiles, per_image = m["models"]["m"]["micro"]["precision"], m2["models"]["m"]["micro"]["precision"]
    assert tiles["value"] == per_image["value"] == 0.5
    w_t, w_i = tiles["ci_high"] - tiles["ci_low"], per_image["ci_high"] - per_image["ci_low"]
    # binomial: per image 2 x 1.96 x sqrt(.25/120) = 0.179; per micrograph 2 x 1.96 x sqrt(.25/20) = 0.438
    # (a percentile interval of 20 clusters moves in steps of 1/20: 0.40-0.50)
    assert 0.14 < w_i < 0.22 and 0.35 < w_t <= 0.55 and w_t > 2 * w_i, (w_t, w_i)
    assert m["provenance"]["resampling"] == {"unit": "parent image", "clusters": 20, "images": 120,
                                             "without_source": 120, "with_parent": 120}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "percentile bootstrap over the 20 clusters of the 120 images (images that share a source paper or a " \
           "parent image, `source.parent`, are one cluster: 120 images name a parent;" in md


def test_a_parent_shared_by_two_papers_joins_them_into_one_cluster():
    from fracbench.data import GoldItem
    from fracbench.score import resampling

    def item(i, paper=None, parent=None):
        return GoldItem(f"{i:064x}", None, ("dimple_equiaxed",), None, paper, parent)

    items = [item(0, "doi:a", "p1"), item(1, "doi:a"), item(2, "doi:b", "p1"), item(3, "doi:c"), item(4),
             item(5, None, "p2"), item(6, None, "p2"), item(7, "doi:c", "p3")]
    unit, clusters = resampling(items)
    # {0, 1, 2}: paper a and paper b share micrograph p1; {3, 7}: paper c; {4}; {5, 6}: micrograph p2
    assert clusters.tolist() == [0, 0, 0, 1, 2, 3, 3, 1]
    assert unit == {"unit": "source paper or parent image", "clusters": 4, "images": 8, "without_source": 3,
                    "with_parent": 5}
    W = bootstrap_weights(8, 200, 0, clusters)
    assert (W[:, 0] == W[:, 2]).all() and (W[:, 5] == W[:, 6]).all() and (W[:, 3] == W[:, 7]).all()


def test_the_report_draws_an_interval_that_does_not_contain_its_point(tmp_path):
    """A point estimate outside its percentile interval (it can happen: the point is computed on
    all images, each resample on its own) made matplotlib refuse a negative error bar, and the
    report blamed the metrics file. Now the interval is drawn as it is."""
    feats = [["dimple_equiaxed"], ["cleavage_facet"], ["ig_facet"], ["gas_pore"]]
    gold, ids = gold_set(tmp_path / "g", feats)
    run(tmp_path, gold, [labels_entry(tmp_path, "m", labels_file(tmp_path / "m.jsonl", dict(zip(ids, feats))))])
    path = tmp_path / "out" / "metrics.json"
    m = json.loads(path.read_text())
    mm = m["models"]["m"]
    mm["micro"]["precision"] = {"value": 0.9, "ci_low": 0.5, "ci_high": 0.8}  # point above its interval
    mm["strict"]["jaccard"] = {"value": 1.0, "ci_low": 1.0000000000000002, "ci_high": 1.0000000000000002}  # by rounding
    mm["per_feature"]["gas_pore"]["recall"] = {"value": 0.2, "ci_low": 0.3, "ci_high": 0.6}  # below it
    path.write_text(json.dumps(m))
    assert fracbench(["report", "--out", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "comparison.png").size == (1000, 500)
    assert "| m | 4 | 1.000 [1.000, 1.000] |" in (tmp_path / "out" / "report.md").read_text()


def test_draw_intervals_spans_exactly_the_interval():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fracbench.headline import draw_intervals

    fig, ax = plt.subplots()
    draw_intervals(ax, np.array([0.0, 1.0]), [{"value": 0.9, "ci_low": 0.5, "ci_high": 0.8},
                                              {"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}])
    segments = ax.collections[-1].get_segments()
    assert [tuple(np.round(s[:, 1], 12)) for s in segments] == [(0.5, 0.8), (0.1, 0.3)]
    plt.close(fig)

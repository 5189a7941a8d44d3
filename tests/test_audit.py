"""`fracdata audit sample` / `score`: stratified blind sample, agreement and Cohen's kappa."""

from __future__ import annotations

import csv
import json

import pytest

from fracdata.label.audit import allocate
from fracdata.cli import main

# 10 labelled images: 6 ductile (first feature dimple_equiaxed), 3 cleavage, 1 with no feature.
FEATURES = [["dimple_equiaxed"]] * 6 + [["cleavage_facet", "river_pattern"]] * 3 + [[]]


def _write(tmp_path):
    ids = [f"{k:064x}" for k in range(10)]
    (tmp_path / "manifest.jsonl").write_text("".join(
        json.dumps({"id": i, "image": f"images/{k}.png", "caption": f"cap {k}"}) + "\n" for k, i in enumerate(ids)))
    (tmp_path / "labels.jsonl").write_text("".join(
        json.dumps({"id": i, "features": f, "labeler": {"kind": "gpt", "model": "gpt-5.2"}}) + "\n"
        for i, f in zip(ids, FEATURES)))
    return ids


def test_allocate_largest_remainder_with_minimum_one():
    assert allocate({"a": 80, "b": 15, "c": 5}, 10) == {"a": 8, "b": 1, "c": 1}
    assert allocate({"a": 6, "b": 3, "none": 1}, 5) == {"a": 3, "b": 1, "none": 1}
    assert allocate({"a": 2, "b": 1}, 10) == {"a": 2, "b": 1}  # N larger than the labels: all of them


def test_sample_is_stratified_blind_and_reproducible(tmp_path, capsys):
    ids = _write(tmp_path)
    args = ["audit", "sample", "--labels", str(tmp_path / "labels.jsonl"), "--manifest",
            str(tmp_path / "manifest.jsonl"), "--n", "5", "--out", str(tmp_path / "audit" / "s.csv")]
    assert main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "audit" / "s.csv")))
    assert list(rows[0]) == ["id", "image", "caption", "human_features", "notes"]  # blind: no GPT column
    chosen = [ids.index(r["id"]) for r in rows]
    assert sum(k < 6 for k in chosen) == 3 and sum(6 <= k < 9 for k in chosen) == 1 and 9 in chosen
    assert rows[0]["image"] == f"../images/{chosen[0]}.png" and rows[0]["human_features"] == ""
    first = (tmp_path / "audit" / "s.csv").read_text()
    assert main(args) == 0 and (tmp_path / "audit" / "s.csv").read_text() == first
    assert "wrote " in capsys.readouterr().out


def test_score_agreement_and_kappa(tmp_path, capsys):
    ids = _write(tmp_path)
    # Reviewer on images 0-3 (GPT: dimples each) and 6 (GPT: cleavage_facet, river_pattern):
    human = {0: "equiaxed dimples", 1: "dimple_equiaxed; secondary cracks", 2: "none", 3: "", 6: "cleavage_facet"}
    with open(tmp_path / "filled.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image", "caption", "human_features", "notes"])
        w.writeheader()
        for k, text in human.items():
            w.writerow({"id": ids[k], "image": "", "caption": "", "human_features": text, "notes": ""})
    out = tmp_path / "score.json"
    assert main(["audit", "score", "--sample", str(tmp_path / "filled.csv"), "--labels",
                 str(tmp_path / "labels.jsonl"), "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    # 4 reviewed images (image 3 left blank). GPT said 1+1+1+2 = 5 features; reviewer 1+2+0+1 = 4; both 3.
    assert (s["images"], s["gpt_features"], s["human_features"], s["confirmed"]) == (4, 5, 4, 3)
    assert (s["precision"], s["recall"], s["exact_match"]) == (0.6, 0.75, 0.25)
    assert s["skipped"] == {"not_reviewed": 1}
    assert s["decision_agreement"] == pytest.approx(1 - 3 / (4 * 53))  # 3 disagreements in 4 x 53 decisions
    dimple = s["per_feature"]["dimple_equiaxed"]
    # gpt [1,1,1,0], human [1,1,0,0]: po = 3/4, pe = 3/4*1/2 + 1/4*1/2 = 1/2, kappa = (3/4-1/2)/(1/2) = 0.5
    assert dimple == {"gpt": 3, "human": 2, "both": 2, "agreement": 0.75, "kappa": 0.5}
    assert s["per_feature"]["cleavage_facet"] == {"gpt": 1, "human": 1, "both": 1, "agreement": 1.0, "kappa": 1.0}
    assert sorted(s["per_feature"]) == ["cleavage_facet", "dimple_equiaxed", "river_pattern", "secondary_crack"]
    assert s["per_feature"]["river_pattern"]["kappa"] == 0.0  # GPT said it once, the reviewer never
    assert "GPT features confirmed by the reviewer: 3/5 = 60.0%" in capsys.readouterr().out


def test_score_rejects_unknown_feature_names(tmp_path, capsys):
    ids = _write(tmp_path)
    (tmp_path / "filled.csv").write_text(f"id,human_features\n{ids[0]},dimples; wobbly lines\n")
    assert main(["audit", "score", "--sample", str(tmp_path / "filled.csv"), "--labels",
                 str(tmp_path / "labels.jsonl")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'filled.csv'}:2: unknown feature 'wobbly lines' in "
                                       "human_features (use taxonomy ids or names: fracdata taxonomy)\n")

"""fracbench's inheritance table: errors a student inherited from, corrected in, or added to its teacher's labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fracbench.cli import main as bench
from fracbench.inheritance import inheritance
from tests.support.bench_kit import gold_set, labels_entry, labels_file


def test_counts_and_recovered_share_by_hand():
    # 4 images x 2 features (a, b)
    G = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], bool)
    T = np.array([[0, 1], [0, 1], [0, 1], [1, 0]], bool)  # a missed on 0, 1; b raised on 0, 1; a raised on 3
    S = np.array([[0, 1], [1, 0], [0, 0], [0, 0]], bool)  # inherits image 0; corrects 1 and 3; new miss of b on 2
    W = np.ones((1, 4))
    r = inheritance(G, T, S, ["a", "b"], W)
    a, b = r["per_feature"]["a"], r["per_feature"]["b"]
    assert (a["teacher_errors"], a["teacher_misses"], a["teacher_false_alarms"], a["inherited"], a["corrected"], a["new"]) == (3, 2, 1, 1, 2, 0)
    assert (b["teacher_errors"], b["inherited"], b["corrected"], b["new"], b["teacher_right"]) == (2, 1, 1, 1, 2)
    assert a["recovered"]["value"] == pytest.approx(2 / 3) and b["new_rate"]["value"] == pytest.approx(1 / 2)
    assert (r["all"]["teacher_errors"], r["all"]["corrected"], r["all"]["new"]) == (5, 3, 1)
    assert r["all"]["recovered"]["value"] == pytest.approx(3 / 5)


def test_run_reports_a_systematic_confusion_as_inherited(tmp_path, capsys):
    # 12 images in 6 papers; the teacher calls every ig_facet a cleavage_facet and the student copies it,
    # while it undoes the teacher's one random error (a gas_pore it missed on image 0)
    gold_feats = [["ig_facet"]] * 6 + [["gas_pore"]] * 6
    gold, ids = gold_set(tmp_path / "g", gold_feats, papers=[f"10.1/p{k // 2}" for k in range(12)])
    teacher = {i: (["cleavage_facet"] if k < 6 else [] if k == 6 else ["gas_pore"]) for k, i in enumerate(ids)}
    student = {i: (["cleavage_facet"] if k < 6 else ["gas_pore"]) for k, i in enumerate(ids)}
    entries = [labels_entry(tmp_path, "teacher", labels_file(tmp_path / "t.jsonl", teacher)),
               labels_entry(tmp_path, "student", labels_file(tmp_path / "s.jsonl", student))]
    out = tmp_path / "out"
    assert bench(["run", "--models", *entries, "--gold", str(gold), "--out", str(out), "--cache", str(tmp_path / "c.sqlite"),
                  "--inherit", "student=teacher"]) == 0
    m = json.loads((out / "metrics.json").read_text())["inheritance"]
    assert [(p["student"], p["teacher"]) for p in m] == [("student", "teacher")]
    per = m[0]["per_feature"]
    assert (per["ig_facet"]["inherited"], per["ig_facet"]["corrected"], per["ig_facet"]["recovered"]["value"]) == (6, 0, 0.0)
    assert (per["cleavage_facet"]["teacher_false_alarms"], per["cleavage_facet"]["inherited"]) == (6, 6)
    assert (per["gas_pore"]["teacher_misses"], per["gas_pore"]["corrected"], per["gas_pore"]["recovered"]["value"]) == (1, 1, 1.0)
    lo, hi = per["ig_facet"]["recovered"]["ci_low"], per["ig_facet"]["recovered"]["ci_high"]
    assert (lo, hi) == (0.0, 0.0)  # every resample of the papers: nothing recovered
    report = (out / "report.md").read_text()
    assert "## Inheritance: what each student took from its teacher" in report
    assert "| ig_facet | 6 (6 / 0) | 6 | 0 | 0 | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] |" in report
    rows = list(csv.DictReader(open(out / "inheritance.csv")))
    assert [(r["feature"], r["inherited"]) for r in rows] == [("(all)", "12"), ("cleavage_facet", "6"), ("ig_facet", "6"),
                                                             ("gas_pore", "0")]
    assert bench(["score", "--out", str(out), "--inherit", "student=nobody"]) == 2
    assert "--inherit: 'nobody' is not one of the models scored here" in capsys.readouterr().err

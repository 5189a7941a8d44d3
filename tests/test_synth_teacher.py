"""`fracdata synth`'s simulated teacher: exact agreement, the two error kinds, and nothing else moves."""

from __future__ import annotations

import json

from fracdata.cli import main
from fracdata.records import GoldRecord, LabelRecord, read_jsonl
from fracdata.synth.corpus import generate
from fracdata.synth.teacher import CONFUSION


def _labels(path) -> dict[str, list[str]]:
    recs = [r for _, r in read_jsonl(path, LabelRecord, "test")]
    assert all(isinstance(r, LabelRecord) for r in recs)
    return {r.id: r.features for r in recs}


def _oracle(synth) -> tuple[dict, dict]:
    return _labels(synth / "labels.jsonl"), {r.id: r.features for _, r in read_jsonl(synth / "gold.jsonl", GoldRecord, "t")}


def test_random_teacher_agrees_exactly_as_asked_with_one_substitution_per_error(synth_small):
    oracle, gold = _oracle(synth_small)
    teacher, teacher_gold = _labels(synth_small / "teacher/random.jsonl"), _labels(synth_small / "teacher/random.gold.jsonl")
    assert list(teacher) == list(oracle) and list(teacher_gold) == list(gold)  # same ids, same order
    for t, o, n, agree in ((teacher, oracle, 120, 101), (teacher_gold, gold, 30, 25)):  # int(0.84 n + 0.5)
        wrong = [i for i in o if t[i] != o[i]]
        assert len(o) == n and n - len(wrong) == agree
        for i in wrong:  # one feature swapped for another synthetic feature: same size, 2 changed
            assert len(t[i]) == len(o[i]) and len(set(t[i]) ^ set(o[i])) == 2
    recs = [r for _, r in read_jsonl(synth_small / "teacher/random.jsonl", LabelRecord, "t")]
    assert {(r.labeler.kind, r.labeler.model) for r in recs} == {("synthetic", "fracdata-synth-teacher-random")}
    summary = json.loads((synth_small / "synth.json").read_text())
    assert summary["counts"]["teacher"] == {"random": {
        "manifest": {"images": 120, "agree": 101, "agreement": 101 / 120, "confused": 0, "random": 19},
        "gold": {"images": 30, "agree": 25, "agreement": 25 / 30, "confused": 0, "random": 5}}}
    assert summary["config"]["teacher"]["agreement"] == 0.84 and summary["config"]["teacher"]["errors"] == ["random"]
    gold_recs = [r for _, r in read_jsonl(synth_small / "gold.jsonl", GoldRecord, "t")]
    assert all(r.source.doi.startswith("10.5555/synth-gold.") and r.source.doi in r.note for r in gold_recs)


def test_systematic_teacher_confuses_one_feature_and_leaves_the_corpus_alone(synth_small, tmp_path):
    d = tmp_path / "s"
    generate(d, seed=0, n=120, n_gold=30, n_manual=12, teacher_agreement=0.5, teacher_errors=["systematic", "random"])
    for name in ("manifest.jsonl", "labels.jsonl", "gold.jsonl", "manual/labels.jsonl"):
        assert (d / name).read_bytes() == (synth_small / name).read_bytes()  # the teacher changes no image or oracle
    oracle, gold = _oracle(d)
    sys_ = _labels(d / "teacher/systematic.jsonl")
    # 20 of 120 images carry ig_facet; 0.5 asks for 60 wrong: all 20 confused, 40 random
    confused = [i for i in oracle if CONFUSION[0] in oracle[i]]
    assert len(confused) == 20
    for i in confused:
        assert CONFUSION[0] not in sys_[i] and CONFUSION[1] in sys_[i]
    assert sum(sys_[i] != oracle[i] for i in oracle) == 60
    counts = json.loads((d / "synth.json").read_text())["counts"]["teacher"]
    assert counts["systematic"]["manifest"] == {"images": 120, "agree": 60, "agreement": 0.5, "confused": 20, "random": 40}
    assert counts["random"]["manifest"]["agree"] == 60 and set(counts) == {"systematic", "random"}
    # at the default agreement only ig_facet images are wrong in training (19 of its 20), all confused
    generate(d, seed=0, n=120, n_gold=30, n_manual=12, teacher_errors=["systematic"])
    sys_ = _labels(d / "teacher/systematic.jsonl")
    wrong = [i for i in oracle if sys_[i] != oracle[i]]
    assert len(wrong) == 19 and all(CONFUSION[0] in oracle[i] for i in wrong)
    assert all(sys_[i] == [CONFUSION[1] if f == CONFUSION[0] else f for f in oracle[i]] for i in wrong)
    assert not (d / "teacher" / "random.jsonl").exists()  # a rerun leaves no stale teacher
    tg = _labels(d / "teacher/systematic.gold.jsonl")
    assert sum(tg[i] != gold[i] for i in gold) == 5  # gold: 4 ig_facet images confused + 1 random error
    assert json.loads((d / "synth.json").read_text())["counts"]["teacher"]["systematic"]["gold"]["confused"] == 4


def test_teacher_flags(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "a"), "--n", "12", "--n-gold", "6", "--n-manual", "1",
                 "--teacher-agreement", "1", "--teacher-errors", "systematic"]) == 0
    printed = capsys.readouterr().out
    a = tmp_path / "a"
    assert (f"synth: wrote {a}/teacher/systematic.jsonl + systematic.gold.jsonl: simulated teacher (ig_facet called "
            "cleavage_facet on 0 + 0 images, random errors on 0 + 0); agrees with the oracle on 12/12 training images "
            "(1.000) and 6/6 gold (1.000)") in printed
    assert _labels(a / "teacher/systematic.jsonl") == _labels(a / "labels.jsonl")
    assert main(["synth", "--out", str(tmp_path / "b"), "--n", "3", "--teacher-agreement", "1.5"]) == 2
    assert capsys.readouterr().err == "error: synth: --teacher-agreement must be between 0 and 1, got 1.5\n"


def test_several_random_teachers_each_agree_as_asked_with_independent_errors(synth_small, tmp_path, capsys):
    d = tmp_path / "k"
    assert main(["synth", "--out", str(d), "--n", "120", "--n-gold", "30", "--n-manual", "12",
                 "--teacher-errors", "random", "systematic", "--random-teachers", "3"]) == 0
    assert (d / "teacher/random.jsonl").read_bytes() == (synth_small / "teacher/random.jsonl").read_bytes()  # the first is unchanged
    oracle, _ = _oracle(d)
    wrong = {}
    for name in ("random", "random-2", "random-3"):
        t = _labels(d / f"teacher/{name}.jsonl")
        wrong[name] = {i for i in oracle if t[i] != oracle[i]}
        assert len(wrong[name]) == 120 - 101  # each at 0.84, exactly
        recs = [r for _, r in read_jsonl(d / f"teacher/{name}.jsonl", LabelRecord, "t")]
        assert {r.labeler.model for r in recs} == {f"fracdata-synth-teacher-{name}"}
    # independent draws: 19 of 120 each, so about 19 * 19 / 120 = 3 shared by chance, never the same set
    assert len({frozenset(w) for w in wrong.values()}) == 3 and len(wrong["random"] & wrong["random-2"]) < 10
    summary = json.loads((d / "synth.json").read_text())
    assert list(summary["counts"]["teacher"]) == ["random", "random-2", "random-3", "systematic"]
    assert summary["config"]["teacher"]["random_teachers"] == 3 and "teacher/random-3.gold.jsonl" in summary["files"]
    assert "teacher/random-2.jsonl + random-2.gold.jsonl" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "bad"), "--teacher-errors", "systematic", "--random-teachers", "2"]) == 2
    assert "--random-teachers 2: needs >= 1, and `random` among --teacher-errors" in capsys.readouterr().err

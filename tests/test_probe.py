"""`fracdata probe`: embeddings from the tiny Qwen3-VL's vision tower, out-of-fold probabilities, suspects."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fracdata.cli import main
from fracdata.probe import suspects as cl

pytestmark = pytest.mark.slow  # synth + the tiny model + embeddings: ~40 s on 2 shared cores


def _read(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_confident_learning_by_hand():
    # the module docstring's example: 100 given 1 with mean p 0.8, 900 given 0 with mean 1 - p of 0.9
    given = np.array([True] * 100 + [False] * 900)
    p = np.r_[np.full(100, 0.8), np.full(900, 0.1)]
    assert cl.thresholds(given, p) == (pytest.approx(0.9), pytest.approx(0.8))
    assert cl.confident_class([0.85, 0.5, 0.05], 0.9, 0.8).tolist() == [1, -1, 0]
    assert cl.confident_class([0.6], 0.3, 0.5).tolist() == [1]  # both confident: the larger self-confidence
    ids = [f"{k:064x}" for k in range(4)]
    Y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    P = np.array([[0.9, 0.1], [0.2, 0.1], [0.95, 0.8], [0.1, np.nan]])
    found, summary = cl.find_suspects(ids, ["a", "b"], Y, P)
    # feature a: t1 = (0.9 + 0.2) / 2 = 0.55, t0 = (0.05 + 0.9) / 2 = 0.475; image 1 (given 1, p 0.2):
    # s0 = 0.8 >= t0 -> suspect, score 0.8; image 2 (given 0, p 0.95): s1 >= t1 -> suspect, score 0.95
    assert [(s.id, s.feature, s.given, s.score) for s in found] == [
        (ids[2], "a", False, pytest.approx(0.95)), (ids[1], "a", True, pytest.approx(0.8))]
    assert summary["a"]["t1"] == pytest.approx(0.55) and "b" not in summary  # b has a NaN: not probed


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from fracdata.synth import generate

    out = tmp_path_factory.mktemp("probe-synth")
    generate(out, seed=0, n=400, n_gold=20, n_manual=4, teacher_errors=("random",))
    return out


def test_probe_ranks_injected_errors_first_and_reruns_from_the_cache(corpus, tiny_model, tmp_path, capsys):
    out = tmp_path / "probe"
    args = ["probe", "--manifest", str(corpus / "manifest.jsonl"), "--labels", str(corpus / "teacher" / "random.jsonl"),
            "--encoder", str(tiny_model), "--out", str(out), "--folds", "4"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "400 images probed" in text and "0 rejected" in text
    probs = _read(out / "probabilities.jsonl")
    assert len(probs) == 400 and all(0 <= v <= 1 for r in probs for v in r["probabilities"].values())
    sus = _read(out / "suspects.jsonl")
    assert [s["score"] for s in sus] == sorted((s["score"] for s in sus), reverse=True)
    teacher = {r["id"]: set(r["features"]) for r in _read(corpus / "teacher" / "random.jsonl")}
    oracle = {r["id"]: set(r["features"]) for r in _read(corpus / "labels.jsonl")}
    assert all((s["feature"] in teacher[s["id"]]) == s["given"] for s in sus)
    errors = {(i, f) for i in oracle for f in oracle[i] ^ teacher[i]}
    features = len(json.loads((out / "probe.json").read_text())["per_feature"])
    base = len(errors) / (400 * features)  # the share of wrong cells: what a random pick finds
    top = sus[:20]  # 5% of the images
    precision = sum((s["id"], s["feature"]) in errors for s in top) / len(top)
    assert precision >= 4 * base, (precision, base)
    info = json.loads((out / "probe.json").read_text())
    assert info["images"] == 400 and info["model"]["folds"] == 4 and len(info["encoder"]["identity"]) == 64
    # a rerun embeds nothing again, and gives the same files
    before = (out / "suspects.jsonl").read_bytes()
    assert main(args) == 0
    assert "embeddings: 400 from " in capsys.readouterr().out
    assert (out / "suspects.jsonl").read_bytes() == before


def test_probe_counts_what_it_cannot_use(corpus, tiny_model, tmp_path, capsys):
    root = tmp_path / "c"
    shutil.copytree(corpus, root)
    rows = _read(root / "manifest.jsonl")
    labels = _read(root / "teacher" / "random.jsonl")
    (root / rows[0]["image"]).unlink()                       # missing_image
    labels[1]["features"] = ["banana"]                       # unknown_feature
    labels = [x for x in labels if x["id"] != rows[2]["id"]]  # no_label
    labels.append({**labels[5], "id": "e" * 64})             # no_image
    (root / "l.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels) + "{not json\n")
    # an image whose pixels changed under its record: id_mismatch
    other = root / rows[4]["image"]
    shutil.copyfile(root / rows[3]["image"], other)
    assert main(["probe", "--manifest", str(root / "manifest.jsonl"), "--labels", str(root / "l.jsonl"),
                 "--encoder", str(tiny_model), "--out", str(tmp_path / "p"), "--cache", str(tmp_path / "e.sqlite")]) == 0
    rejects = _read(tmp_path / "p" / "rejects.jsonl")
    assert sorted((r["reason"], r.get("id")) for r in rejects) == sorted([
        ("missing_image", rows[0]["id"]), ("unknown_feature", rows[1]["id"]), ("no_label", rows[2]["id"]),
        ("no_image", "e" * 64), ("malformed_json", None), ("id_mismatch", rows[4]["id"])])
    assert "396 images probed" in capsys.readouterr().out  # 400 less the 4 images rejected
    assert main(["probe", "--manifest", str(root / "manifest.jsonl"), "--labels", str(root / "l.jsonl"),
                 "--encoder", str(tmp_path / "nowhere"), "--out", str(tmp_path / "q")]) == 2
    assert "encoder" in capsys.readouterr().err


def test_the_probe_is_a_benchmark_row_trained_on_the_datasets_train_split(corpus, tiny_model, tmp_path, capsys):
    from fracbench.cli import main as bench

    data = tmp_path / "dataset"
    assert main(["build", "--manifest", str(corpus / "manifest.jsonl"), "--labels", str(corpus / "labels.jsonl"),
                 "--gold", str(corpus / "gold.jsonl"), "--out", str(data), "--workers", "1"]) == 0
    entry = tmp_path / "probe.yaml"
    entry.write_text(f"name: probe\nkind: probe\npath: {data}\nencoder: {tiny_model}\n")
    teacher = tmp_path / "teacher.yaml"
    teacher.write_text(f"name: teacher\nkind: labels\npath: {corpus / 'teacher' / 'random.gold.jsonl'}\n")
    out = tmp_path / "bench"
    assert bench(["run", "--models", str(teacher), str(entry), "--gold", str(corpus / "gold.jsonl"), "--out", str(out),
                  "--cache", str(tmp_path / "cache.sqlite")]) == 0
    m = json.loads((out / "metrics.json").read_text())
    probe = m["models"]["probe"]
    assert probe["kind"] == "probe" and probe["n"] == 20 and probe["coverage"]["failed"] == 0
    f1 = probe["micro"]["f1"]
    assert 0.3 < f1["value"] <= 1 and f1["ci_low"] <= f1["value"] <= f1["ci_high"]  # it learnt something, with a CI
    ident = m["provenance"]["models"]["probe"]["identity"]
    train = json.loads((data / "build.json").read_text())["split"]["train"]["images"]
    assert ident["kind"] == "probe" and ident["train_images"] == train
    assert any(p["a"] == "teacher" and p["b"] == "probe" for p in m["paired"])
    rows = [json.loads(x) for x in (out / "predictions" / "probe.jsonl").read_text().splitlines()]
    assert [set(r["labels"]) for r in rows] == [{f for f, p in r["probabilities"].items() if p >= 0.5} for r in rows]
    assert "| probe | 20 |" in (out / "report.md").read_text()

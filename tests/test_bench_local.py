"""`fracbench run` end to end on the tiny Qwen3-VL: predictions, cache, blank control, score, report."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout

import pytest
from PIL import Image

from fracbench.cli import main
from fracbench.data import STATUSES
from fracdata.provenance import git_state
from tests.support.bench_kit import N, entry, make_gold, rows


@pytest.fixture(scope="module")
def bench(tiny_model, synth_small, tmp_path_factory):
    """One `fracbench run` (base, fine-tuned, and the fine-tuned model's blank control); its stdout."""
    tmp = tmp_path_factory.mktemp("bench")
    ids = make_gold(synth_small, tmp / "g")
    models = [entry(tmp, "tiny-base", tiny_model, 4), entry(tmp, "tiny-ft", tiny_model, 4)]
    common = ["--gold", str(tmp / "g" / "gold.jsonl"), "--cache", str(tmp / "cache.sqlite")]
    args = ["run", "--models", *models, "--blank", "tiny-ft", "--out", str(tmp / "out"), *common]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(args) == 0
    return {"tmp": tmp, "ids": ids, "args": args, "models": models, "common": common, "stdout": buf.getvalue()}


def test_run_writes_one_row_per_gold_id_and_reruns_from_cache(bench, capsys):
    out, ids, first = bench["tmp"] / "out", bench["ids"], bench["stdout"]
    # tiny-ft is the same checkpoint as tiny-base: same identity, so it is served from the cache
    assert f"predictions/tiny-base.jsonl: {N} rows (0 cached, {N} computed" in first
    assert f"predictions/tiny-ft.jsonl: {N} rows ({N} cached, 0 computed" in first
    assert f"predictions/tiny-ft-blank.jsonl: {N} rows (0 cached, {N} computed" in first
    assert first.rstrip().splitlines()[-1] == f"report: {out / 'report.md'}"
    for name in ("tiny-base", "tiny-ft", "tiny-ft-blank"):
        got = rows(out, name)
        assert [r["id"] for r in got] == ids
        assert all(r["model"] == name and r["status"] in STATUSES and r["status"] != "failed" for r in got)
        assert all(set(r) >= {"id", "model", "raw", "labels", "unknown", "status", "latency_s", "usage", "cached"} for r in got)
        assert all(r["usage"]["completion_tokens"] <= 8 for r in got)
    assert [r["raw"] for r in rows(out, "tiny-ft")] == [r["raw"] for r in rows(out, "tiny-base")]
    meta = json.loads((out / "predictions" / "tiny-ft-blank.meta.json").read_text())
    assert meta["control"] == "blank" and len(meta["identity"]["checkpoint"]) == 64 and meta["prompt_variant"] == "training"
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["models"]) == ["tiny-base", "tiny-ft", "tiny-ft-blank"]
    before = {n: rows(out, n) for n in metrics["models"]}
    # second run: nothing computed, identical predictions and scores
    assert main(bench["args"]) == 0
    second = capsys.readouterr().out
    for name in ("tiny-base", "tiny-ft", "tiny-ft-blank"):
        assert f"predictions/{name}.jsonl: {N} rows ({N} cached, 0 computed" in second
        assert [{**r, "cached": False} for r in rows(out, name)] == [{**r, "cached": False} for r in before[name]]
    again = json.loads((out / "metrics.json").read_text())
    assert again["models"] == metrics["models"] and again["paired"] == metrics["paired"]


def test_batched_generation_equals_one_by_one(bench, tiny_model, capsys):
    tmp = bench["tmp"]
    (tmp / "one").mkdir()
    one = entry(tmp / "one", "tiny-base", tiny_model, 1)
    assert main(["infer", "--model", one, "--gold", str(tmp / "g" / "gold.jsonl"), "--out", str(tmp / "one"),
                 "--cache", str(tmp / "one.sqlite")]) == 0
    assert f"{N} rows (0 cached, {N} computed" in capsys.readouterr().out
    assert [r["raw"] for r in rows(tmp / "one", "tiny-base")] == [r["raw"] for r in rows(tmp / "out", "tiny-base")]


def test_metrics_contract_and_report_equal_score_json(bench):
    tmp = bench["tmp"]
    out = tmp / "out"
    m = json.loads((out / "metrics.json").read_text())
    assert set(m) == {"headline", "models", "paired", "annotators", "provenance"} and m["headline"] == "strict_jaccard"
    for name, v in m["models"].items():
        for avg in ("micro", "macro"):
            assert set(v[avg]) == {"precision", "recall", "f1"}
            assert all(set(x) == {"value", "ci_low", "ci_high"} for x in v[avg].values())
        assert v["n"] == N and sum(v["status"].values()) == N
    assert [(p["a"], p["b"]) for p in m["paired"]] == [("tiny-base", "tiny-ft"), ("tiny-base", "tiny-ft-blank"), ("tiny-ft", "tiny-ft-blank")]
    assert m["annotators"][0]["a"] == "ann1" and m["annotators"][0]["n_images"] == N
    prov = m["provenance"]
    assert prov["gold"] == str(tmp / "g" / "gold.jsonl") and prov["not_a_score"] is False and prov["git"] == git_state()
    assert set(prov) >= {"gold_sha256", "task", "taxonomy", "templates_sha256", "date", "seed", "models"}
    with open(out / "table.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["model"] for r in table] == list(m["models"])
    md = (out / "report.md").read_text()
    for r in table:
        v = m["models"][r["model"]]
        for avg, k in [("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "f1")]:
            for part in ("value", "ci_low", "ci_high"):
                col = f"{avg}_{k}" + ("" if part == "value" else f"_{part}")
                assert float(r[col]) == v[avg][k][part]
        assert float(r["exact_match"]) == v["exact_match"]["value"] and float(r["jaccard"]) == v["jaccard"]["value"]
        assert float(r["strict_jaccard"]) == v["strict"]["jaccard"]["value"]  # the headline
        assert int(r["none_on_featured"]) == v["abstention"]["none_on_featured"]
        mi = v["micro"]["precision"]
        assert f"| {r['model']} | {N} | {mi['value']:.3f} [{mi['ci_low']:.3f}, {mi['ci_high']:.3f}] |" in md
    with open(out / "per_feature.csv") as f:
        per = list(csv.DictReader(f))
    assert len(per) == sum(len(v["per_feature"]) for v in m["models"].values())
    for r in per:
        assert float(r["recall"]) == m["models"][r["model"]]["per_feature"][r["feature"]]["recall"]["value"]
    assert Image.open(out / "comparison.png").size == (1000, 500)
    assert Image.open(out / "per_feature.png").size == (1200, 320 * 3)
    assert "NOT A SCORE" not in md and "## Provenance" in md and prov["gold_sha256"] in md


def test_limit_run_is_labelled_not_a_score(bench, capsys):
    out = bench["tmp"] / "limited"
    assert main(["run", "--models", bench["models"][0], "--out", str(out), "--limit", "2", *bench["common"]]) == 0
    assert "(--limit 2: NOT A SCORE)" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["provenance"]["not_a_score"] is True and m["models"]["tiny-base"]["n"] == 2
    assert "> **NOT A SCORE: `--limit 2` run on the first 2 gold items only.**" in (out / "report.md").read_text()


def test_missing_checkpoint_is_a_one_line_error(bench, tmp_path, capsys):
    assert main(["infer", "--model", "tiny-ft", "--model-path", f"tiny-ft={tmp_path / 'nope'}", "--out", str(tmp_path),
                 *bench["common"]]) == 2
    assert capsys.readouterr().err == (f"error: model tiny-ft: path {tmp_path / 'nope'} not found (build or train it "
                                       "first, or set --model-path tiny-ft=PATH)\n")


def test_peft_adapter_is_applied_and_keyed(bench, tiny_model, capsys):
    """A LoRA adapter (random B, so it changes the model) gets its own identity and cache keys."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    tmp = bench["tmp"]
    torch.manual_seed(0)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp / "adapter")
    ft = entry(tmp, "tiny-lora", tiny_model, 4)
    assert main(["infer", "--model", ft, "--adapter", f"tiny-lora={tmp / 'adapter'}", "--out", str(tmp / "out"),
                 *bench["common"]]) == 0
    assert f"predictions/tiny-lora.jsonl: {N} rows (0 cached, {N} computed" in capsys.readouterr().out
    meta = json.loads((tmp / "out" / "predictions" / "tiny-lora.meta.json").read_text())
    assert meta["identity"]["adapter"] == str(tmp / "adapter") and len(meta["identity"]["adapter_sha256"]) == 64
    assert [r["id"] for r in rows(tmp / "out", "tiny-lora")] == bench["ids"]


def test_loader_gives_trainings_pixels_exif_upright_and_8bit(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from fracbench.infer import GRAY, _loader
    from fracdata.images import load_normalised

    a = (np.random.default_rng(3).random((70, 110, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(a).save(tmp_path / "x.jpg", exif=exif, quality=95)
    b = (np.random.default_rng(4).integers(0, 4096, (70, 90))).astype(np.uint16)  # a 12-bit SEM frame
    Image.fromarray(b).save(tmp_path / "y.png")
    for name, size in (("x.jpg", (70, 110)), ("y.png", (90, 70))):
        item = SimpleNamespace(image=tmp_path / name)
        im = _loader(item, None)()
        want = load_normalised((tmp_path / name).read_bytes())
        assert im.size == size and im.mode == want.mode
        assert np.array_equal(np.asarray(im), np.asarray(want))
        blank = _loader(item, "blank")()
        assert blank.size == size and blank.getextrema() == tuple((v, v) for v in GRAY)

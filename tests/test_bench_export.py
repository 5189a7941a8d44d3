"""`fracbench export`: the gold set and task as an lmms-eval task and a VLMEvalKit TSV.

The lmms-eval task must score answers exactly as fracbench does: a served model (the local
OpenAI-protocol stand-in) answers the gold images through the real `fracbench run`, with every
kind of answer (right, partly right, hallucinated, synonyms and plurals, JSON, `none`, empty,
unparsable, <think> blocks), and the exported task, run standalone with fracdata and fracbench
unimportable (tests/support/lmms_standalone.py), must give fracbench's point estimates.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fracbench.cli import main
from fracdata.records import GoldRecord, read_jsonl
from tests.support.openai_server import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]


def _answers(gold: list[GoldRecord]) -> dict[str, str]:
    """One scripted answer per gold id, cycling through the shapes a model answers in."""
    shapes = [
        lambda f: "Features: " + ", ".join(f) if f else "Features: none",  # right
        lambda f: "Features: " + ", ".join(f[:1] + ["fish_eye"]),  # half right, one hallucinated
        lambda f: "Features: none",
        lambda f: "",  # empty: a failed answer
        lambda f: "I cannot tell what this is.",  # unparsed
        lambda f: json.dumps({"features": [x.replace("_", " ").title() + "s" for x in f]}),  # names, plurals, JSON
        lambda f: "<think>looking</think>Features: " + ", ".join(reversed(f)) + ", beach marks",
        lambda f: "The surface shows fatigue striations but no chevron marks.",
    ]
    return {g.id: shapes[i % len(shapes)](list(g.features)) for i, g in enumerate(gold)}


@pytest.fixture(scope="module")
def scored(synth_small, tmp_path_factory):
    from fracdata.images import load_normalised, pixel_id

    tmp = tmp_path_factory.mktemp("export")
    gold = [r for _, r in read_jsonl(synth_small / "gold.jsonl", GoldRecord, "test")]
    answers = _answers(gold)

    def responder(kind, body):
        url = next(p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url")
        return answers[pixel_id(load_normalised(base64.b64decode(url.split(",", 1)[1])))]  # "": an empty answer

    with OpenAIStub(responder=responder) as stub:
        entry = tmp / "served.yaml"
        entry.write_text(f"name: served\nkind: openai-compatible\nbase_url: {stub.base_url}\nmodel: m\n"
                         "max_retries: 0\ndecoding: {temperature: 0}\n")
        assert main(["run", "--models", str(entry), "--gold", str(synth_small / "gold.jsonl"), "--out", str(tmp / "bench"),
                     "--cache", str(tmp / "cache.sqlite")]) == 0
    return tmp, gold, json.loads((tmp / "bench" / "metrics.json").read_text())


def test_the_exported_lmms_eval_task_scores_as_fracbench_without_fracdata(scored, synth_small, capsys):
    tmp, gold, metrics = scored
    out = tmp / "lmms"
    assert main(["export", "--format", "lmms-eval", "--gold", str(synth_small / "gold.jsonl"), "--out", str(out)]) == 0
    folder = out / "fractography"
    assert capsys.readouterr().out == (f"wrote {folder}/fractography.yaml, {folder}/test.parquet: task fractography v1, "
                                       f"{len(gold)} gold images from {synth_small / 'gold.jsonl'}, prompt 'training'\n")
    assert sorted(p.name for p in folder.iterdir()) == ["fracbench_metrics.py", "fracdata_agreement.py", "fracdata_answer.py",
                                                        "fracdata_taxonomy.py", "fractography.yaml", "taxonomy.json",
                                                        "test.parquet", "utils.py"]
    # the scoring code is fracbench's and fracdata's: byte for byte but for the imports of each other
    from fracbench.export import VENDORED

    for name, (pkg, file) in VENDORED.items():
        src = (ROOT / ("benchmarks/fracbench" if pkg == "fracbench" else "fracdata") / file).read_text().splitlines()
        copy = (folder / f"{name}.py").read_text().splitlines()
        changed = [(a, b) for a, b in zip(src, copy, strict=True) if a != b]
        assert all(a.startswith(("from fracdata.", "from fracbench.")) and b == a.replace(".", "_", 1) for a, b in changed)
    assert (folder / "utils.py").read_bytes() == (ROOT / "benchmarks" / "fracbench" / "lmms_task_utils.py").read_bytes()
    statuses = metrics["models"]["served"]["status"]
    assert statuses["ok"] and statuses["none"] and statuses["failed"] and statuses["unparsed"]  # every kind scored
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "lmms_standalone.py"), str(folder),
                           str(tmp / "bench" / "predictions" / "served.jsonl")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    m = metrics["models"]["served"]
    want = {f"{a}_{k}": m[a][k]["value"] for a in ("micro", "macro") for k in ("precision", "recall", "f1")}
    want.update(exact_match=m["exact_match"]["value"], jaccard=m["jaccard"]["value"],
                strict_micro_precision=m["strict"]["micro"]["precision"]["value"],
                strict_micro_f1=m["strict"]["micro"]["f1"]["value"],
                coverage=m["coverage"]["answered"] / m["coverage"]["n"])
    assert got == pytest.approx(want, abs=1e-12) and set(got) == set(want)
    assert 0 < got["micro_precision"] < 1 and got["strict_micro_precision"] < got["micro_precision"]


def test_the_exported_rows_are_the_gold_images_and_the_training_prompt(scored, synth_small, capsys):
    import datasets

    from fracdata.answer import render_answer, render_prompt
    from fracdata.images import pixel_id
    from fracdata.taxonomy import load_taxonomy

    tmp, gold, _ = scored
    assert main(["export", "--format", "lmms-eval", "--gold", str(synth_small / "gold.jsonl"), "--out", str(tmp / "l2")]) == 0
    config = yaml.load((tmp / "l2" / "fractography" / "fractography.yaml").read_text(), Loader=_TagLoader)
    assert config["dataset_kwargs"]["data_files"]["test"] == str(tmp / "l2" / "fractography" / "test.parquet")
    assert config["doc_to_visual"] == "!function utils.doc_to_visual" and config["output_type"] == "generate_until"
    assert [m["aggregation"] for m in config["metric_list"]] == [f"!function utils.{m['metric']}" for m in config["metric_list"]]
    ds = datasets.load_dataset("parquet", data_files=config["dataset_kwargs"]["data_files"], split="test",
                               cache_dir=str(tmp / "hf"))
    tax = load_taxonomy()
    assert [r["id"] for r in ds] == [g.id for g in gold]
    for row, g in zip(ds, gold):
        assert pixel_id(row["image"]) == g.id  # the pixels fracbench feeds, unchanged
        assert row["features"] == list(g.features) and row["answer"] == render_answer(list(g.features), tax)
        assert "<image>" + row["question"] == render_prompt()

    # VLMEvalKit: index, base64 image, question, answer (+ id, features)
    assert main(["export", "--format", "vlmevalkit", "--gold", str(synth_small / "gold.jsonl"), "--out", str(tmp / "v")]) == 0
    capsys.readouterr()
    csv.field_size_limit(1 << 30)
    with open(tmp / "v" / "fractography.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["index", "image", "question", "answer", "id", "features"]
    from PIL import Image

    for i, (row, g) in enumerate(zip(rows, gold, strict=True)):
        assert row["index"] == str(i) and row["id"] == g.id and row["features"] == ", ".join(g.features)
        assert pixel_id(Image.open(io.BytesIO(base64.b64decode(row["image"])))) == g.id
        assert row["question"] == render_prompt().removeprefix("<image>")


class _TagLoader(yaml.SafeLoader):
    """Reads `!function utils.x` as the string "!function utils.x" (lmms-eval resolves it)."""


_TagLoader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))


def test_a_prompt_without_a_leading_image_is_refused(tmp_path, synth_small, capsys):
    task = yaml.safe_load((ROOT / "fracdata" / "inference" / "tasks" / "fractography-v1.yaml").read_text())
    task["prompts"]["late"] = "Which features? <image>"
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(task))
    assert main(["export", "--format", "vlmevalkit", "--task", str(tmp_path / "t.yaml"), "--prompt", "late",
                 "--gold", str(synth_small / "gold.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == ("error: the prompt does not start with <image>: harnesses put the image before the "
                                       "text, so the exported question would not be what fracbench sends; choose a "
                                       "variant that starts with it\n")
    assert not (tmp_path / "o").exists()

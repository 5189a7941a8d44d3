"""The teacher's row end to end: `fracdata label --gold` over the benchmark's images (real openai
SDK against the local HTTP stub), then `fracbench run` scores that labels file beside models."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from fracbench.cli import main as fracbench
from fracdata.cli import main as fracdata
from tests.support.bench_kit import gold_set, labels_entry
from tests.support.label_kit import read
from tests.support.openai_server import OpenAIStub, text_of

KEY = "sk-proj-TESTKEY-0123456789abcdef"
GOLD = [["dimple_equiaxed"], ["cleavage_facet", "secondary_crack"], ["ig_facet"], ["gas_pore"]]


def teacher(kind, body):
    """A teacher that reads the image (its height says which one) and is wrong on the last."""
    url = body["input"][0]["content"][0]["image_url"]
    k = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size[1] - 64
    feats = GOLD[k] if k < 3 else ["shrinkage_pore"]
    return {"image_type": "SEM fractograph", "features": [{"id": f, "evidence": "seen"} for f in feats],
            "material": None, "magnification": None, "rationale": "stub"}


def test_label_gold_images_then_score_the_teacher_as_a_row(tmp_path, monkeypatch, capsys):
    gold, ids = gold_set(tmp_path / "g", GOLD)
    out = tmp_path / "labels" / "gold-gpt.jsonl"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIStub(responder=teacher, api_key=KEY) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        assert fracdata(["label", "--gold", str(gold), "--out", str(out), "--concurrency", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"read {gold}: 4 lines, 4 images to label, 0 rejected (none)" in printed
    bodies = [b for path, b, _ in stub.requests if path == "/v1/responses"]
    assert len(bodies) == 4
    for b in bodies:  # the image alone: no caption, no excerpts, and never the gold answer
        text = text_of(b)
        block = text.split("<untrusted_source_text>\n")[1].split("\n</untrusted_source_text>")[0]
        assert json.loads(block) == {"caption": "", "excerpts": []}
        assert "Intergranular" not in block and "cleavage_facet" not in block
    labels = {r["id"]: r["features"] for r in read(out)}
    assert labels == {ids[0]: GOLD[0], ids[1]: GOLD[1], ids[2]: GOLD[2], ids[3]: ["shrinkage_pore"]}

    assert fracbench(["run", "--models", labels_entry(tmp_path, "teacher", out), "--gold", str(gold),
                      "--out", str(tmp_path / "bench"), "--cache", str(tmp_path / "c.sqlite")]) == 0
    m = json.loads((tmp_path / "bench" / "metrics.json").read_text())["models"]["teacher"]
    assert m["coverage"] == {"n": 4, "answered": 4, "failed": 0, "unparsed": 0}
    # TP 4 of 5 gold cells, 1 FP (shrinkage_pore, a hallucination: macro over 6 labels, one scoring 0)
    assert (m["micro"]["precision"]["value"], m["micro"]["recall"]["value"]) == (0.8, 0.8)
    assert m["macro"]["precision"]["value"] == 4 / 6
    assert m["kind"] == "labels" and "| teacher | 4 | 0.800 [" in (tmp_path / "bench" / "report.md").read_text()


def test_label_needs_exactly_one_source(tmp_path, capsys):
    import pytest

    for argv in (["label", "--out", "x.jsonl"], ["label", "--manifest", "m", "--gold", "g", "--out", "x"]):
        with pytest.raises(SystemExit) as e:
            fracdata(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "one of the arguments --manifest --gold is required" in err
    assert "argument --gold: not allowed with argument --manifest" in err

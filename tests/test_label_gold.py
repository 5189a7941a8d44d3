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


def label_gold(gold, out, monkeypatch, concurrency: int) -> OpenAIStub:
    """`fracdata label --gold` against the local OpenAI server (real SDK over HTTP); the stub, for its requests."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIStub(responder=teacher, api_key=KEY) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        assert fracdata(["label", "--gold", str(gold), "--out", str(out), "--concurrency", str(concurrency)]) == 0
    return stub


def test_label_gold_images_then_score_the_teacher_as_a_row(tmp_path, monkeypatch, capsys):
    gold, ids = gold_set(tmp_path / "g", GOLD)
    out = tmp_path / "labels" / "gold-gpt.jsonl"
    stub = label_gold(gold, out, monkeypatch, concurrency=2)
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
    assert all(r["labeler"]["inputs"] == ["image"] for r in read(out))  # recorded: the image alone

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


def test_label_gold_sends_the_caption_and_excerpts_a_gold_record_carries(tmp_path, monkeypatch, capsys):
    """The teacher's row uses the teacher's inputs: the training labels were written from image +
    caption + excerpts, so a gold record that carries them sends them (the local server sees them),
    each label records what was sent, and the report says it."""
    from fracdata.records import GoldRecord, dump_jsonl, read_jsonl

    gold, ids = gold_set(tmp_path / "g", GOLD)
    recs = [r for _, r in read_jsonl(gold, GoldRecord, "test")]
    texts = {ids[0]: ("Fig. 2a. Equiaxed dimples on the overload zone.", ["Fig. 2a shows dimples [[img-0]]."]),
             ids[1]: ("Fig. 3. Cleavage facets with a secondary crack.", []),
             ids[2]: ("", ["As seen in Fig. 4, the fracture is intergranular [[img-2]].", "Second excerpt."])}
    dump_jsonl([r.model_copy(update={"caption": texts[r.id][0] or None, "excerpts": texts[r.id][1] or None})
                if r.id in texts else r for r in recs], gold)
    out = tmp_path / "labels" / "gold-gpt.jsonl"
    stub = label_gold(gold, out, monkeypatch, concurrency=1)
    printed = capsys.readouterr().out
    assert "inputs: image on 1, image + caption on 1, image + caption + excerpts on 1, image + excerpts on 1" in printed
    sent = {}
    for path, body, _ in stub.requests:
        block = text_of(body).split("<untrusted_source_text>\n")[1].split("\n</untrusted_source_text>")[0]
        sent[body["input"][0]["content"][0]["image_url"]] = json.loads(block)
    assert len(sent) == 4
    assert sorted(map(json.dumps, sent.values())) == sorted(json.dumps({"caption": c, "excerpts": e}) for c, e in [
        *texts.values(), ("", [])])  # exactly what each record carries, never its features
    assert all("ig_facet" not in json.dumps(v) and "dimple_equiaxed" not in json.dumps(v) for v in sent.values())
    inputs = {r["id"]: r["labeler"]["inputs"] for r in read(out)}
    assert inputs == {ids[0]: ["image", "caption", "excerpts"], ids[1]: ["image", "caption"],
                      ids[2]: ["image", "excerpts"], ids[3]: ["image"]}

    assert fracbench(["run", "--models", labels_entry(tmp_path, "teacher", out), "--gold", str(gold),
                      "--out", str(tmp_path / "bench"), "--cache", str(tmp_path / "c.sqlite")]) == 0
    m = json.loads((tmp_path / "bench" / "metrics.json").read_text())
    assert m["provenance"]["models"]["teacher"]["identity"]["inputs"] == {
        "image + caption + excerpts": 1, "image + caption": 1, "image + excerpts": 1, "image": 1}
    assert ("- teacher: image on 1 images, image + caption on 1 images, image + caption + excerpts on 1 images, "
            "image + excerpts on 1 images") in (tmp_path / "bench" / "report.md").read_text()

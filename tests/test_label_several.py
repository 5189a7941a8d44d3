"""`fracdata label --models`: several labellers, one file and cache each, never paying twice; then aggregate."""

from __future__ import annotations

import json

from fracdata.cli import main
from fracdata.taxonomy import load_taxonomy
from tests.support.label_kit import make_manifest, read
from tests.support.openai_server import OpenAIStub, text_of

KEY = "sk-proj-TESTKEY-0123456789abcdef"
TAX = load_taxonomy()


def responder(kind, body):
    """gpt-5.2 (Responses) sees feature k in image k; local-vlm (Chat) is wrong on image 1."""
    k = int(text_of(body).split("[[img-")[1].split("]]")[0])
    if body.get("model") == "local-vlm" and k == 1:
        k = 5
    return {"image_type": "SEM fractograph", "features": [{"id": TAX.ids[k], "evidence": "x"}],
            "material": None, "magnification": None, "rationale": "r"}


def test_two_labellers_one_file_each_reruns_pay_nothing_and_the_aggregate_builds(tmp_path, monkeypatch, capsys):
    manifest, ids = make_manifest(tmp_path / "m", 4)
    out = tmp_path / "labels"
    with OpenAIStub(responder=responder, api_key=KEY) as stub:
        entry = tmp_path / "local-vlm.yaml"
        entry.write_text(f"name: local-vlm\nkind: openai-compatible\nbase_url: {stub.base_url}\nmodel: local-vlm\n"
                         "api_key_env: LOCAL_KEY\nprompt: training\ndecoding:\n  temperature: 0.0\n  max_tokens: 2048\n")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("LOCAL_KEY", KEY)
        argv = ["label", "--manifest", str(manifest), "--out", str(out), "--models", "gpt-5.2", str(entry),
                "--backoff-base", "0.02"]
        assert main(argv) == 0
        assert (stub.counts["responses"], stub.counts["chat"]) == (4, 4)
        chat = [b for path, b, _ in stub.requests if path == "/v1/chat/completions"]
        assert {b["model"] for b in chat} == {"local-vlm"} and {b["temperature"] for b in chat} == {0.0}
        assert {b["max_tokens"] if "max_tokens" in b else b.get("max_completion_tokens") for b in chat} == {2048}
        a, b = read(out / "gpt-5.2.jsonl"), read(out / "local-vlm.jsonl")
        assert [r["features"] for r in a] == [[TAX.ids[k]] for k in range(4)]
        assert [r["features"] for r in b] == [[TAX.ids[k if k != 1 else 5]] for k in range(4)]
        assert {r["labeler"]["model"] for r in b} == {"local-vlm"} and (out / "local-vlm.cache.sqlite").is_file()
        text = capsys.readouterr().out
        assert f"next: fracdata labels aggregate --labels {out / 'gpt-5.2.jsonl'} {out / 'local-vlm.jsonl'}" in text
        # a rerun asks nothing: each labeller answers from its own cache
        assert main(argv) == 0
        assert (stub.counts["responses"], stub.counts["chat"]) == (4, 4)
        assert "4 already in " in capsys.readouterr().out
    # a third labeller (the oracle here) and the aggregate, which the builder reads like any labels file
    third = tmp_path / "third.jsonl"
    third.write_text("".join(json.dumps({"id": i, "features": [TAX.ids[k]], "labeler": {"kind": "gpt", "model": "m3"}}) + "\n"
                             for k, i in enumerate(ids)))
    agg = tmp_path / "agg.jsonl"
    assert main(["labels", "aggregate", "--labels", str(out / "gpt-5.2.jsonl"), str(out / "local-vlm.jsonl"), str(third),
                 "--out", str(agg)]) == 0
    assert [r["features"] for r in read(agg)] == [[TAX.ids[k]] for k in range(4)]  # the odd answer is outvoted
    assert read(agg)[0]["labeler"]["sources"] == ["gpt-5.2", "local-vlm", "m3"]


def test_models_needs_a_folder_and_checks_every_entry_before_paying(tmp_path, monkeypatch, capsys):
    manifest, _ = make_manifest(tmp_path / "m", 1)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["label", "--manifest", str(manifest), "--out", str(tmp_path / "x.jsonl"), "--models", "a", "b"]) == 2
    assert "with --models, --out is a folder" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkind: local\nmodel: m\n")
    assert main(["label", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--models", "a", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: kind: ")
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text("name: keyed\nkind: openai-compatible\nmodel: m\nbase_url: http://127.0.0.1:9/v1\napi_key_env: NOPE_KEY\n")
    monkeypatch.delenv("NOPE_KEY", raising=False)
    assert main(["label", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--models", "a", str(keyed)]) == 2
    assert capsys.readouterr().err == "error: model keyed: NOPE_KEY is not set (its entry's api_key_env)\n"
    assert not (tmp_path / "o" / "a.jsonl").exists()  # nothing ran

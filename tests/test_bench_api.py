"""API models: the real openai SDK against a local Chat Completions server (tests/support), with
injected 500s and 429s, keys from named variables, and `llamafactory-cli api` serving the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fracbench.cli import main
from fracdata.images import image_id
from fracdata.inference.endpoint import data_url
from fracdata.records import GoldRecord, dump_jsonl
from tests.support.lf_api import llamafactory_api
from tests.support.openai_server import Fault, OpenAIStub
from tests.support.bench_kit import make_gold, rows

TAXONOMY_PROMPT_END = 'separated by ", ", or "Features: none".'
LENGTH_ERROR = "finish_reason length: the answer was cut off at the token limit (raise it in the entry's decoding)"


def color_gold(folder: Path, n: int) -> tuple[Path, list[str]]:
    """n distinct small images (no model needed to make them)."""
    (folder / "img").mkdir(parents=True)
    recs = []
    for i in range(n):
        p = folder / "img" / f"{i}.png"
        Image.new("RGB", (64 + 8 * i, 64), (40 * i, 255 - 30 * i, 7 * i)).save(p)
        recs.append(GoldRecord(id=image_id(p), image=f"img/{i}.png", features=["dimple_equiaxed"] if i % 2 else ["gas_pore"]))
    dump_jsonl(recs, folder / "gold.jsonl")
    return folder / "gold.jsonl", [r.id for r in recs]


def api_entry(folder: Path, name: str, base_url: str, key_env: str | None, retries: int = 2, extra: str = "") -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: openai-compatible\nbase_url: {base_url}\nmodel: gpt-5.5\nprompt: taxonomy\n"
                 + (f"api_key_env: {key_env}\n" if key_env else "") + f"concurrency: 3\nmax_retries: {retries}\ntimeout_s: 20\n"
                 "decoding: {max_completion_tokens: 300, reasoning_effort: low}\n" + extra)
    return str(p)


def test_api_model_with_500_and_429_every_item_predicted_or_failed(tmp_path, monkeypatch, capsys):
    gold, ids = color_gold(tmp_path / "g", 6)
    monkeypatch.setenv("FRACBENCH_TEST_KEY", "sk-test-123")
    cache = str(tmp_path / "cache.sqlite")
    url = data_url(Image.open(tmp_path / "g" / "img" / "4.png"))
    marker = url[len(url) // 2: len(url) // 2 + 40]  # a piece of image 4's base64: this item always fails

    def responder(kind, body):
        return "Features: dimple_equiaxed, gas pores, wibble"

    with OpenAIStub(responder=responder, api_key="sk-test-123") as stub:
        stub.faults += [Fault("500", match=marker, times=None), Fault("500", match=1), Fault("429", match=2, retry_after=0.1)]
        model = api_entry(tmp_path, "gpt", "http://unused.invalid/v1", "FRACBENCH_TEST_KEY")
        args = ["infer", "--model", model, "--base-url", f"gpt={stub.base_url}", "--gold", str(gold),
                "--out", str(tmp_path / "out"), "--cache", cache]
        assert main(args) == 0
        got = rows(tmp_path / "out", "gpt")
        assert [r["id"] for r in got] == ids  # one row per gold id, in gold order
        failed = [r for r in got if r["status"] == "failed"]
        assert [r["id"] for r in failed] == [ids[4]]
        assert failed[0] | {"latency_s": None} == {"id": ids[4], "model": "gpt", "raw": "", "labels": [], "unknown": [],
                                                    "status": "failed", "error": "HTTP 500: The server had an error (stub)",
                                                    "latency_s": None, "usage": None, "cached": False}
        for r in got:
            if r["status"] != "failed":
                assert (r["labels"], r["unknown"], r["status"]) == (["dimple_equiaxed", "gas_pore"], ["wibble"], "ok")
                assert r["response_model"] == "gpt-5.5-stub" and r["usage"]["prompt_tokens"] == 1000
        assert stub.counts["fault:429"] == 1 and stub.counts["fault:500"] == 1 + 3  # the one-off + 1 try and 2 retries
        assert stub.counts["chat"] == 5
        body = next(b for path, b, _ in stub.requests if path == "/v1/chat/completions")
        assert set(body) == {"model", "messages", "max_completion_tokens", "reasoning_effort"}  # no temperature
        (part_img, part_text), = [m["content"] for m in body["messages"]]
        assert part_img["type"] == "image_url" and part_img["image_url"]["url"].startswith("data:image/png;base64,")
        assert part_text["text"].startswith("You are an expert fractographer.") and part_text["text"].endswith(TAXONOMY_PROMPT_END)
        # failures are not cached: a re-run asks again for item 4 only
        stub.faults.clear()
        assert main(args) == 0
        assert "6 rows (5 cached, 1 computed" in capsys.readouterr().out
        assert stub.counts["chat"] == 6 and all(r["status"] == "ok" for r in rows(tmp_path / "out", "gpt"))


def test_cut_off_filtered_refused_and_empty_answers_fail_and_are_asked_again(tmp_path, capsys):
    """Issue 13: finish_reason length / content_filter, a refusal and an empty answer are failures
    (status failed, the reason in error), never cached, so the next run asks for exactly those again."""
    gold, ids = color_gold(tmp_path / "g", 5)
    urls = [data_url(Image.open(tmp_path / "g" / "img" / f"{i}.png")) for i in range(5)]
    markers = [u[len(u) // 2: len(u) // 2 + 40] for u in urls]  # a piece of each image's base64
    empty = {"now": True}

    def responder(kind, body):
        return "" if empty["now"] and markers[2] in json.dumps(body) else "Features: gas pores"

    with OpenAIStub(responder=responder) as stub:
        stub.faults += [Fault("length", match=markers[0]), Fault("content_filter", match=markers[1]),
                        Fault("refusal", match=markers[4])]
        model = api_entry(tmp_path, "gpt", stub.base_url, None)
        args = ["infer", "--model", model, "--gold", str(gold), "--out", str(tmp_path / "out"),
                "--cache", str(tmp_path / "cache.sqlite")]
        assert main(args) == 0
        assert "5 rows (0 cached, 5 computed" in capsys.readouterr().out
        got = {r["id"]: r for r in rows(tmp_path / "out", "gpt")}
        assert [got[i]["status"] for i in ids] == ["failed", "failed", "failed", "ok", "failed"]
        cut = got[ids[0]]
        assert {k: cut[k] for k in ("raw", "labels", "unknown", "finish_reason", "error", "response_model", "cached")} == {
            "raw": "Features:", "labels": [], "unknown": [], "finish_reason": "length", "error": LENGTH_ERROR,
            "response_model": "gpt-5.5-stub", "cached": False}  # the stub cuts "Features: gas pores" in half
        assert (got[ids[1]]["raw"], got[ids[1]]["finish_reason"], got[ids[1]]["error"]) == (
            "", "content_filter", "finish_reason content_filter: the provider's content filter withheld or cut the answer")
        assert (got[ids[2]]["raw"], got[ids[2]]["finish_reason"], got[ids[2]]["error"]) == (
            "", "stop", "empty answer (finish_reason stop)")
        assert got[ids[3]]["labels"] == ["gas_pore"]
        assert (got[ids[4]]["raw"], got[ids[4]]["error"]) == ("", "refusal: I'm sorry, I can't help with that.")
        meta = json.loads((tmp_path / "out" / "predictions" / "gpt.meta.json").read_text())
        assert meta["statuses"]["failed"] == 4 and meta["statuses"]["ok"] == 1
        # next run: the four failures are asked again (the faults were one-off), the success is cached
        empty["now"] = False
        assert main(args) == 0
        assert "5 rows (1 cached, 4 computed" in capsys.readouterr().out
        assert stub.counts["chat"] == 5 + 4
        again = rows(tmp_path / "out", "gpt")
        assert [(r["status"], r["labels"], r["cached"]) for r in again] == [
            ("ok", ["gas_pore"], False)] * 3 + [("ok", ["gas_pore"], True), ("ok", ["gas_pore"], False)]


def test_a_served_checkpoint_gets_trainings_pixels_and_an_api_model_the_image_as_is(tmp_path):
    """An entry with served_path (a fracdata checkpoint behind vllm serve) is sent the image as
    LlamaFactory's training resize left it; its pixel bounds join the identity (cache key)."""
    import base64
    import io

    gold, _ = color_gold(tmp_path / "g", 1)  # a 64x64 image
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")
    with OpenAIStub() as stub:
        served = api_entry(tmp_path, "served", stub.base_url, None,
                           extra=f"served_path: {ckpt}\nimage_max_pixels: 1024\nimage_min_pixels: 256\n")
        plain = api_entry(tmp_path, "plain", stub.base_url, None, extra="image_max_pixels: 1024\n")
        for model in (served, plain):
            assert main(["infer", "--model", model, "--gold", str(gold), "--out", str(tmp_path / "out"),
                         "--cache", str(tmp_path / "c.sqlite")]) == 0
        urls = [b["messages"][0]["content"][0]["image_url"]["url"] for path, b, _ in stub.requests
                if path == "/v1/chat/completions"]
    sizes = [Image.open(io.BytesIO(base64.b64decode(u.partition(",")[2]))).size for u in urls]
    assert sizes == [(32, 32), (64, 64)]  # 64*64 > 1024 px: f = sqrt(1024 / 4096) = 0.5; the plain API model: as is
    meta = json.loads((tmp_path / "out" / "predictions" / "served.meta.json").read_text())
    assert meta["identity"]["image_pixels"] == [256, 1024] and len(meta["identity"]["checkpoint"]) == 64


def test_a_key_the_server_echoes_back_never_reaches_the_predictions(tmp_path, monkeypatch, capsys):
    """The stub answers a wrong key with 401 "Incorrect API key provided: <key>" (as the real API
    does, in a nested {"error": {"message"}} body); the failed rows say why without the key. The
    key is not sk-shaped, so only removing the entry's own api_key_env value hides it."""
    gold, ids = color_gold(tmp_path / "g", 2)
    secret = "gem-Secret-Value-4242"
    monkeypatch.setenv("FRACBENCH_TEST_KEY", secret)
    with OpenAIStub(api_key="the-right-key") as stub:
        model = api_entry(tmp_path, "gpt", stub.base_url, "FRACBENCH_TEST_KEY")
        assert main(["infer", "--model", model, "--gold", str(gold), "--out", str(tmp_path / "out"),
                     "--cache", str(tmp_path / "cache.sqlite")]) == 0
        assert stub.counts["chat"] == 0  # every request refused
    got = rows(tmp_path / "out", "gpt")
    assert [r["id"] for r in got] == ids
    for r in got:
        assert r["status"] == "failed"
        assert r["error"] == "HTTP 401: Incorrect API key provided: *** (stub)"  # the nested message, redacted
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file())
    captured = capsys.readouterr()
    assert secret not in written + captured.out + captured.err


def test_unset_key_skips_the_model_with_one_line(tmp_path, monkeypatch, capsys):
    gold, _ = color_gold(tmp_path / "g", 3)
    monkeypatch.setenv("FRACBENCH_TEST_KEY", "sk-x")
    monkeypatch.delenv("FRACBENCH_UNSET_KEY", raising=False)
    with OpenAIStub() as stub:
        ok = api_entry(tmp_path, "stubbed", stub.base_url, "FRACBENCH_TEST_KEY")
        nokey = api_entry(tmp_path, "gemini-like", stub.base_url, "FRACBENCH_UNSET_KEY")
        assert main(["run", "--models", nokey, ok, "--gold", str(gold), "--out", str(tmp_path / "out"),
                     "--cache", str(tmp_path / "c.sqlite")]) == 0
        assert stub.counts["chat"] == 3  # nothing sent for the skipped model
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "gemini-like" in line] == [
        "skipped gemini-like: set FRACBENCH_UNSET_KEY to score it (its key variable is unset)"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics["models"]) == ["stubbed"] and metrics["paired"] == []
    assert "gemini-like" not in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "predictions" / "gemini-like.jsonl").exists()
    # all models skipped: an error, not an empty report
    assert main(["run", "--models", nokey, "--gold", str(gold), "--out", str(tmp_path / "o2"),
                 "--cache", str(tmp_path / "c.sqlite")]) == 2
    assert capsys.readouterr().err == "error: no model could be run (see the skipped lines above)\n"


@pytest.mark.slow
def test_local_checkpoint_and_llamafactory_api_give_one_row_per_gold_id(tiny_model, synth_small, tmp_path, capsys):
    ids = make_gold(synth_small, tmp_path / "g", 3)
    gold, cache, out = str(tmp_path / "g" / "gold.jsonl"), str(tmp_path / "c.sqlite"), tmp_path / "out"
    local = tmp_path / "local.yaml"
    local.write_text(f"kind: local\npath: {tiny_model}\ndecoding: {{max_new_tokens: 8}}\n")
    with llamafactory_api(tiny_model, tmp_path, "tiny") as (base_url, _log):
        served = tmp_path / "served.yaml"
        served.write_text(f"kind: openai-compatible\nbase_url: {base_url}\nmodel: tiny\nserved_path: {tiny_model}\n"
                          "prompt: training\nconcurrency: 1\nmax_retries: 1\ntimeout_s: 120\n"
                          "decoding: {max_tokens: 8, temperature: 0}\n")
        assert main(["run", "--models", str(local), str(served), "--gold", gold, "--out", str(out), "--cache", cache]) == 0
    text = capsys.readouterr().out
    assert "predictions/local.jsonl: 3 rows (0 cached, 3 computed" in text
    assert "predictions/served.jsonl: 3 rows (0 cached, 3 computed" in text
    # Rows and statuses are the contract; texts may differ (the server drops mm_token_type_ids).
    local_rows, served_rows = rows(out, "local"), rows(out, "served")
    assert [r["id"] for r in local_rows] == ids and all(r["status"] in ("ok", "none", "empty", "unparsed") for r in local_rows)
    # The random tiny model never ends within 8 tokens, so the real server says finish_reason
    # length: a cut-off answer is a failure (kept as text for diagnosis, never labels or cache).
    assert [r["id"] for r in served_rows] == ids
    assert all((r["status"], r["finish_reason"], r["labels"], r["error"]) == ("failed", "length", [], LENGTH_ERROR)
               and r["raw"] for r in served_rows)
    assert all(r["response_model"] == "tiny" and r["usage"]["completion_tokens"] <= 8 for r in rows(out, "served"))
    sent = (tmp_path / "api.log").read_text()
    assert '"temperature": 0.0' in sent and '"max_tokens": 8' in sent
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(p["a"], p["b"], p["n"]) for p in metrics["paired"]] == [("local", "served", 3)]
    ident = metrics["provenance"]["models"]
    assert ident["served"]["identity"]["checkpoint"] == ident["local"]["identity"]["checkpoint"]


def test_score_refuses_predictions_made_on_different_items(tmp_path, capsys):
    gold, _ = color_gold(tmp_path / "g", 3)
    out = tmp_path / "out"
    with OpenAIStub() as stub:
        a = api_entry(tmp_path, "a", stub.base_url, None)
        b = api_entry(tmp_path, "b", stub.base_url, None)
        common = ["--gold", str(gold), "--out", str(out), "--cache", str(tmp_path / "c.sqlite")]
        assert main(["infer", "--model", a, *common]) == 0
        assert main(["infer", "--model", b, "--limit", "2", *common]) == 0
    capsys.readouterr()
    assert main(["score", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {out}/predictions/b.meta.json: limit differs from a's (2 vs None): "
                                       "re-run infer for both with the same task/gold/limit\n")
    assert main(["infer", "--model", a, "--model-path", "typo=/x", *common]) == 2
    assert capsys.readouterr().err == "error: --model-path typo=...: no model 'typo' in this run (a)\n"

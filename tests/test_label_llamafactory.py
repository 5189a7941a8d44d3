"""The same `fracdata label` command, `--api chat`, through `llamafactory-cli api` serving the tiny Qwen3-VL."""

from __future__ import annotations

import pytest

from fracdata.cli import main
from tests.support.lf_api import llamafactory_api
from tests.support.label_kit import make_manifest, read

# A random model cannot write the JSON object: each image must end as a counted failure with
# one of the answer-level reasons (never an HTTP error, never a label made from garbage).
ANSWER_REASONS = {"length", "malformed_json", "schema_invalid", "empty_answer"}


@pytest.mark.slow
def test_label_through_llamafactory_api(tiny_model, tmp_path, monkeypatch, capsys):
    with llamafactory_api(tiny_model, tmp_path, "tiny-qwen3vl") as (base_url, _log):
        manifest, ids = make_manifest(tmp_path / "m", 3)
        monkeypatch.setenv("OPENAI_API_KEY", "unused-by-a-local-server")
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        out = tmp_path / "labels.jsonl"
        rc = main(["label", "--manifest", str(manifest), "--out", str(out), "--api", "chat", "--model", "tiny-qwen3vl",
                   "--chat-format", "text", "--max-output-tokens", "24", "--concurrency", "1", "--timeout", "120"])
    labels, fails = read(out), read(tmp_path / "labels.failures.jsonl")
    assert rc == (1 if fails else 0)
    assert sorted([r["id"] for r in labels] + [f["id"] for f in fails]) == sorted(ids)
    assert {f["reason"] for f in fails} <= ANSWER_REASONS, fails
    for rec in labels:  # should the random model ever write valid JSON, it is a real, valid label
        assert rec["labeler"]["response_model"] == "tiny-qwen3vl"
    sent = (tmp_path / "api.log").read_text()
    assert '"temperature": 0.0' in sent and "<untrusted_source_text>" in sent  # what the server received
    assert "cost this run: unknown (no price for 'tiny-qwen3vl')" in capsys.readouterr().out

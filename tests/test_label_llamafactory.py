"""The same `fracdata label` command, `--api chat`, through `llamafactory-cli api` serving the tiny Qwen3-VL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fracdata.cli import main
from tests.test_label import make_manifest, read

# A random model cannot write the JSON object: each image must end as a counted failure with
# one of the answer-level reasons (never an HTTP error, never a label made from garbage).
ANSWER_REASONS = {"length", "malformed_json", "schema_invalid", "empty_answer"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_label_through_llamafactory_api(tiny_model, tmp_path, monkeypatch, capsys):
    port = _free_port()
    config = tmp_path / "api.yaml"
    config.write_text(f"model_name_or_path: {tiny_model}\ntemplate: qwen3_vl_nothink\ninfer_backend: huggingface\n")
    env = dict(os.environ, API_HOST="127.0.0.1", API_PORT=str(port), API_MODEL_NAME="tiny-qwen3vl")
    cli = Path(sys.executable).with_name("llamafactory-cli")
    log = open(tmp_path / "api.log", "wb")
    server = subprocess.Popen([str(cli), "api", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    assert json.load(r)["data"][0]["id"] == "tiny-qwen3vl"
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "api.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "llamafactory-cli api did not start in 180 s"
                time.sleep(0.5)
        manifest, ids = make_manifest(tmp_path / "m", 3)
        monkeypatch.setenv("OPENAI_API_KEY", "unused-by-a-local-server")
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
        out = tmp_path / "labels.jsonl"
        rc = main(["label", "--manifest", str(manifest), "--out", str(out), "--api", "chat", "--model", "tiny-qwen3vl",
                   "--chat-format", "text", "--max-output-tokens", "24", "--concurrency", "1", "--timeout", "120"])
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
            log.close()
    labels, fails = read(out), read(tmp_path / "labels.failures.jsonl")
    assert rc == (1 if fails else 0)
    assert sorted([r["id"] for r in labels] + [f["id"] for f in fails]) == sorted(ids)
    assert {f["reason"] for f in fails} <= ANSWER_REASONS, fails
    for rec in labels:  # should the random model ever write valid JSON, it is a real, valid label
        assert rec["labeler"]["response_model"] == "tiny-qwen3vl"
    sent = (tmp_path / "api.log").read_text()
    assert '"temperature": 0.0' in sent and "<untrusted_source_text>" in sent  # what the server received
    assert "cost this run: unknown (no price for 'tiny-qwen3vl')" in capsys.readouterr().out

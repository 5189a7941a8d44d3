"""A reduced `fracdata demo` end to end: real synth, build, tiny model, LlamaFactory training and
fracbench scoring, on CPU. It asserts that fine-tuning beats the untrained model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_reduced_demo_learns_and_reports(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "fracdata", "demo", "--out", str(out), "--n", "480", "--n-gold", "40",
         "--n-manual", "8", "--steps", "160", "--min-gain", "0.05", "--min-blank-gain", "-1"],
        capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "reports" / "bench" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"tiny-base", "tiny-ft-full", "tiny-ft-full-blank"}
    f1 = {k: v["micro"]["f1"]["value"] for k, v in metrics["models"].items()}
    assert f1["tiny-ft-full"] > f1["tiny-base"] + 0.05, f1
    assert all(m["n"] == 40 for m in metrics["models"].values())
    assert metrics["provenance"]["gold"] == str(out / "data" / "synthetic" / "gold.jsonl")
    # the printed table has one row per model and the report path
    for name in metrics["models"]:
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines()), proc.stdout
    assert f"wrote {out / 'reports' / 'bench'}/report.md" in proc.stdout
    assert "PASS  fine-tuned micro-F1 - base micro-F1" in proc.stdout
    assert (out / "reports" / "bench" / "report.md").read_text().count("tiny-ft-full") >= 2


def test_demo_fails_loudly_when_a_step_fails(tmp_path, capsys):
    from fracdata.cli import main

    rc = main(["demo", "--out", str(tmp_path / "d"), "--n", "-5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: demo step 'synth' failed (exit 2)")
    assert err.endswith(f"full log: {tmp_path / 'd' / 'demo.log'}")

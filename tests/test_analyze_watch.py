"""Watch mode: images dropped into a folder, the watcher killed (SIGKILL) mid-run and restarted:
every image has exactly one result in the log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from fracdata.images import image_id
from fracdata.records import sha256_file
from tests.support.analyze_kit import GEN_KEY, GEN_KEY_ENV, gen_entry, gen_responder, make_images, prices, spec_entry, spec_responder
from tests.support.openai_server import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]
# The dispatcher exactly as `fracdata analyze` runs it.
RUNNER = "import sys; from fracdata.cli import main; sys.exit(main(sys.argv[1:]))"


def lines(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def wait_for(pred, timeout: float, proc=None, what=""):
    end = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"watcher exited early ({proc.returncode}): {proc.stdout.read()}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_watch_survives_a_kill_and_analyses_each_image_once(tmp_path):
    drop, out = tmp_path / "drop", tmp_path / "out"
    drop.mkdir()
    log = out / "analyses.jsonl"
    env = {**os.environ, GEN_KEY_ENV: GEN_KEY}
    env.pop("FRACDATA_SPECIALIST", None)
    # latency: each analysis takes ~0.3 s, so the kill lands while the watcher is busy
    with OpenAIStub(responder=spec_responder) as spec, \
            OpenAIStub(responder=gen_responder, api_key=GEN_KEY, latency=0.3) as gen:
        cmd = [sys.executable, "-c", RUNNER, "analyze", "--watch", str(drop), "--out", str(out),
               "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist", gen_entry(tmp_path, gen.base_url),
               "--prices", prices(tmp_path), "--poll", "0.1", "--settle", "0.2"]

        def start():
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        first = start()
        imgs = make_images(tmp_path / "src", 5)
        for p in imgs:  # as a microscope does: write elsewhere, then move in
            shutil.copy(p, drop / p.name)
        (drop / "notes.txt").write_text("stage log")
        wait_for(lambda: len(lines(log)) >= 2, 60, first, "2 analyses")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        done_before = len(lines(log))
        assert 2 <= done_before < 5, "the kill should land mid-run"

        shutil.copy(imgs[0], drop / "same-bytes-new-name.png")  # same content id: not analysed again
        second = start()
        wait_for(lambda: len(lines(log)) >= 5, 60, second, "5 analyses")
        time.sleep(0.6)  # a few more polls: nothing more may be appended
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        output = second.stdout.read()
        first.stdout.close()
        second.stdout.close()

    results = lines(log)
    assert sorted(r["id"] for r in results) == sorted(image_id(p) for p in imgs)  # 5 results, none twice
    assert sorted(r["file_sha256"] for r in results) == sorted(sha256_file(p) for p in imgs)
    assert all(r["generalist"] is not None and r["flags"] == [] for r in results)
    assert all((out / f"{r['id'][:12]}.png").is_file() for r in results)
    assert f"watch {drop}: {done_before} analyses in {log}, 0 rejects in" in output
    assert f"watch: ignoring {drop / 'notes.txt'}: not an image suffix" in output
    assert (f"watch {drop}: analysed {5 - done_before}, rejected 0, already done {done_before + 1}, ignored 1 "
            f"(not an image suffix or hidden); log {log} (5 lines)") in output


def test_watch_once_records_rejects_as_done(tmp_path, monkeypatch, capsys):
    """--once: analyse what is there and exit; an unreadable image is a reject, logged once."""
    from fracdata.cli import main

    monkeypatch.setenv(GEN_KEY_ENV, GEN_KEY)
    drop = tmp_path / "drop"
    make_images(drop, 2)
    (drop / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, then nothing
    out = tmp_path / "out"
    with OpenAIStub(responder=spec_responder) as spec, OpenAIStub(responder=gen_responder, api_key=GEN_KEY) as gen:
        cmd = ["analyze", "--watch", str(drop), "--once", "--settle", "0", "--poll", "0.05", "--out", str(out),
               "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist", gen_entry(tmp_path, gen.base_url),
               "--prices", prices(tmp_path)]
        assert main(cmd) == 1  # a reject
        first = capsys.readouterr().out
        assert main(cmd) == 0
        second = capsys.readouterr().out
        assert gen.counts["responses"] == 2
    log = out / "analyses.jsonl"
    rejects = [json.loads(x) for x in (out / "analyses.rejects.jsonl").read_text().splitlines()]
    # a PNG signature, then no header PIL can read: a damaged PNG, not "not an image" (fracdata.images.MAGIC)
    assert [(r["file"], r["reason"]) for r in rejects] == [(str(drop / "broken.png"), "decode_error")]
    assert rejects[0]["detail"].startswith("damaged or unsupported PNG header (first bytes b'\\x89PNG")
    assert len(lines(log)) == 2
    assert f"watch {drop}: analysed 2, rejected 1, already done 0, ignored 0" in first
    assert f"watch {drop}: 2 analyses in {log}, 1 rejects in {out / 'analyses.rejects.jsonl'}" in second
    assert f"watch {drop}: analysed 0, rejected 0, already done 3, ignored 0" in second

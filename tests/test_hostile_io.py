"""Hostile input, given as a hostile user would give it, to every stage that reads from outside.

Each case runs the real CLI in a subprocess (tests/support/hostile.py) and checks the promise:
exit 0, 1 (items failed, counted) or 2 (a one-line `error:`), never a traceback; kept + rejected
= read wherever the stage counts; nothing paid twice; every output file readable again as UTF-8
(tests/support/hostile_corpus.py makes the inputs). The issue-17 classes: unencodable text, deep
JSON/YAML, alias bombs, NUL, non-UTF-8, symlink loops, damaged caches, unwritable outputs,
non-ASCII and 3-character keys, API bodies of the wrong shape, a trickling server, a budget
under a dense script, two writers on one output, a killed run.
Cases that take more than a few seconds (process start included) are marked "slow:" in a comment
(no `slow` marker is registered in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fracdata.taxonomy import load_taxonomy
from tests.support.hostile import check, run
from tests.support.hostile_corpus import (SURROGATE, NOT_UTF8, YAML_KINDS, assert_outputs_readable, damaged_sqlite,
                                          deep_json, symlink_loop, unwritable_dir, write, write_lines)
from tests.support.label_kit import make_manifest, read
from tests.support.openai_server import OpenAIStub, Fault, response_body, text_of

TAX = load_taxonomy()
KEY = "sk-hostile-0123456789"
HOLDER = re.compile(rf"\(pid (\d+) on {re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)")


def marker(body) -> int:
    return int(text_of(body).split("[[img-")[1].split("]]")[0])


def good_answer(k: int, rationale: str | None = None) -> dict:
    return {"image_type": "SEM fractograph", "features": [{"id": TAX.ids[k], "evidence": f"seen {k}"}],
            "material": "steel", "magnification": None, "rationale": rationale or f"image {k}"}


def responder(kind, body):
    return good_answer(marker(body))


def label(manifest, out, stub, *extra, key=KEY, timeout=300):
    return run(["label", "--manifest", manifest, "--out", out, "--backoff-base", "0.02", *extra],
               env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": stub.base_url}, timeout=timeout)


def read_counts(stdout: str) -> tuple[int, int, int]:
    """(lines read, images to label, rejected) from label's first line."""
    m = re.search(r": (\d+) lines, (\d+) images to label, (\d+) rejected", stdout)
    return int(m[1]), int(m[2]), int(m[3])


# -- label: the manifest -----------------------------------------------------------------------
def test_label_manifest_lines_from_hell_are_counted_rejects(tmp_path):
    manifest, ids = make_manifest(tmp_path / "m", 3)
    rows = read(manifest)
    rows[0]["caption"] += " line\u2028separator\u0085next"  # valid JSON: the reader splits at \n only
    symlink_loop(tmp_path / "m" / "loop.png")
    hostile = [  # (line, reason)
        (f'{{"id": "{"a" * 64}", "image": "img00.png", "caption": "x {SURROGATE} y"}}', "unencodable_text"),
        (f'{{"\\udc80": 1, "id": "{"b" * 64}"}}', "unencodable_text"),
        (deep_json(), "malformed_json"),
        (b'{"id": "' + NOT_UTF8 + b'"}', "malformed_json"),
        ("[1, 2]", "malformed_json"),
        (f'{{"id": "{"c" * 64}", "image": "a\\u0000b.png"}}', "image_missing"),
        (f'{{"id": "{"d" * 64}", "image": "loop.png"}}', "image_missing"),
        (f'{{"id": "{"e" * 64}", "image": "img00.png", "excerpts": {"[" * 500 + "]" * 500}}}', "invalid_record"),
    ]
    write_lines(manifest, [json.dumps(r, ensure_ascii=False) for r in rows] + [h for h, _ in hostile])
    out = tmp_path / "out" / "labels.jsonl"
    with OpenAIStub(responder=responder) as stub:
        r = check(label(manifest, out, stub), (0,))
    assert read_counts(r.stdout) == (len(rows) + len(hostile), len(rows), len(hostile))  # kept + rejected = read
    rejects = read(tmp_path / "out" / "labels.rejects.jsonl")
    assert [(x["line"], x["reason"]) for x in rejects] == [(len(rows) + i + 1, why) for i, (_, why) in enumerate(hostile)]
    assert rejects[0]["detail"] == "caption: character 2 is U+D800, a lone surrogate (not encodable as UTF-8)"
    assert sorted(x["id"] for x in read(out)) == sorted(ids) and stub.completions == 3
    assert assert_outputs_readable(tmp_path / "out") == 3


# -- label: the answers ------------------------------------------------------------------------
def _body(obj) -> bytes:
    return json.dumps(obj).encode()


HOSTILE_ANSWERS = {  # image k -> (what the server sends, the failure it must be counted as)
    1: (json.dumps(good_answer(1, "a lone surrogate \ud800 in the rationale")), "unencodable_text"),
    2: (b"[1, 2, 3]", "malformed_response"),
    3: (_body({"status": "completed", "output": "not a list"}), "malformed_response"),
    4: (deep_json().encode(), "malformed_response"),
    5: ('{"rationale": ' * 100_000, "malformed_json"),
    6: (_body({"status": "incomplete", "incomplete_details": "max_output_tokens"}), "incomplete"),
    7: (_body({"status": "completed", "model": {"x": 1}, "usage": "lots", "output": [
        {"type": "message", "content": [{"type": "refusal", "refusal": "no \ud800"}, 7, None]}, "junk"]}), "refusal"),
    8: (_body({"status": "completed", "output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}]}),
        "empty_answer"),
}


def hostile_responder(kind, body):
    k = marker(body)
    if k == 9:  # a fine answer in a body whose usage and model are of the wrong shape: labelled
        obj = response_body(1, "gpt-5.2", json.dumps(good_answer(9)), None, {"input": 1, "cached": 0, "output": 1,
                                                                             "reasoning": 0})
        return _body({**obj, "model": ["m"], "usage": {"input_tokens": "many", "output_tokens": -1}})
    return HOSTILE_ANSWERS[k][0] if k in HOSTILE_ANSWERS else good_answer(k)


def test_label_answers_of_every_wrong_shape_are_counted_failures_and_a_rerun_recovers(tmp_path):
    # slow: two label runs (~10 s)
    manifest, ids = make_manifest(tmp_path / "m", 10)
    out = tmp_path / "out" / "labels.jsonl"
    with OpenAIStub(responder=hostile_responder) as stub:
        r = check(label(manifest, out, stub, "--max-retries", "0", "--concurrency", "3"), (1,))
        fails = {f["id"]: f for f in read(tmp_path / "out" / "labels.failures.jsonl")}
        assert {i: f["reason"] for i, f in fails.items()} == {ids[k]: why for k, (_, why) in HOSTILE_ANSWERS.items()}
        assert "\\ud800" in fails[ids[7]]["detail"]  # described, escaped, written
        assert sorted(x["id"] for x in read(out)) == sorted([ids[0], ids[9]])
        labelled9 = next(x for x in read(out) if x["id"] == ids[9])
        assert "response_model" not in labelled9["labeler"] and "usage" not in labelled9["labeler"]
        assert f"{len(fails)} failures" in r.stdout and assert_outputs_readable(tmp_path / "out") == 3
        stub.responder = responder  # the server mends its ways: the rerun asks exactly the failures
        paid = stub.completions
        check(label(manifest, out, stub), (0,))
        assert stub.completions - paid == len(HOSTILE_ANSWERS)
        assert sorted(x["id"] for x in read(out)) == sorted(ids) and read(tmp_path / "out" / "labels.failures.jsonl") == []
        assert assert_outputs_readable(tmp_path / "out") == 3


def test_a_3_character_key_echoed_in_a_successful_answer_is_written_nowhere(tmp_path):
    key = "q~Z"  # keys under 4 characters were never redacted

    def echo(kind, body):
        k = marker(body)
        a = good_answer(k, f"the key is {key}" if k < 2 else None)
        a["features"][0]["evidence"] = f"{key}{key} region"
        return a

    manifest, ids = make_manifest(tmp_path / "m", 3)
    with OpenAIStub(responder=echo, api_key=key) as stub:
        r = check(label(manifest, tmp_path / "out" / "labels.jsonl", stub, key=key), (0,))
    labels = {x["id"]: x for x in read(tmp_path / "out" / "labels.jsonl")}
    assert labels[ids[0]]["rationale"] == "the key is ***" and set(labels[ids[2]]["evidence"].values()) == {"****** region"}
    assert "answers that held the key (redacted) 3" in r.stdout and key not in r.stdout + r.stderr
    for p in (tmp_path / "out").rglob("*"):
        assert key.encode() not in p.read_bytes(), p


# -- label: runs that must stop with one line --------------------------------------------------
def test_label_one_line_errors(tmp_path):
    # slow: eight short runs (~15 s)
    manifest, _ = make_manifest(tmp_path / "m", 1)
    damaged = tmp_path / "damaged" / "labels.jsonl"
    damaged_sqlite(tmp_path / "damaged" / "labels.cache.sqlite")
    loop = symlink_loop(tmp_path / "loop")
    prices = write(tmp_path / "prices.yaml", YAML_KINDS["deep"])
    ro = unwritable_dir(tmp_path)
    out = tmp_path / "out" / "labels.jsonl"
    cases = [  # (manifest, out, extra flags, key, what the one error line must hold)
        (manifest, damaged, [], KEY,
         f"{damaged.parent}/labels.cache.sqlite: not a usable label cache (DatabaseError: file is not a database)"),
        (manifest, ro / "labels.jsonl", [], KEY, f"{ro}/labels.lock: cannot create the lock file"),
        (manifest, loop / "labels.jsonl", [], KEY, f"{loop}/labels.lock: cannot create the lock file"),
        (loop, out, [], KEY, f"{loop}: manifest not found (or not a file, or a symlink loop)"),
        (manifest, os.fsdecode(str(tmp_path).encode() + b"/\xff.jsonl"), [], KEY, "is not valid UTF-8"),
        (manifest, out, [], "sk-caf\u00e9", "OPENAI_API_KEY holds a character that cannot go in an HTTP header"),
        (manifest, out, [], "sk-two\nlines", "OPENAI_API_KEY holds a character that cannot go in an HTTP header"),
        (manifest, out, ["--prices", prices], KEY, f"{prices}: the price table file is nested too deeply to read"),
    ]
    with OpenAIStub() as stub:
        for m, o, extra, key, message in cases:
            r = check(label(m, o, stub, *extra, key=key), (2,))
            assert len(r.errors) == 1 and message in r.errors[0], (o, r.errors)
        assert stub.completions == 0


# -- label: two writers, a killed run ----------------------------------------------------------
def _label_proc(manifest, out, stub, *extra):
    env = dict(os.environ, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=stub.base_url,
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1])]))
    return subprocess.Popen([sys.executable, "-m", "fracdata", "label", "--manifest", str(manifest), "--out", str(out),
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_concurrent_label_runs_pay_once_per_image_and_a_killed_run_leaves_no_lock(tmp_path):
    # slow: four label processes (~20 s)
    n = 12
    manifest, ids = make_manifest(tmp_path / "m", n)
    out = tmp_path / "out" / "labels.jsonl"
    with OpenAIStub(responder=responder, latency=0.05) as stub:
        stub.hold()  # the first to take the lock stays inside its run until the other has given up
        both = [_label_proc(manifest, out, stub, "--concurrency", "2") for _ in range(2)]
        deadline = time.monotonic() + 120
        while all(p.poll() is None for p in both) and time.monotonic() < deadline:
            time.sleep(0.05)
        loser = next(p for p in both if p.poll() is not None)
        winner = next(p for p in both if p is not loser)
        stub.release()
        err = loser.stderr.read().decode()
        assert loser.returncode == 2 and winner.wait(timeout=300) == 0, err
        assert "Traceback" not in err and err.count("\n") == 1
        assert err.startswith(f"error: {out}: another fracdata label is writing here ") and int(HOLDER.search(err)[1]) == winner.pid
        assert stub.completions == n and sorted(x["id"] for x in read(out)) == sorted(ids)  # each image paid once

        # a run killed mid-way: its lock dies with it, the next run finishes the rest, nothing twice
        out2 = tmp_path / "out2" / "labels.jsonl"
        proc = _label_proc(manifest, out2, stub, "--concurrency", "2")
        stub.wait_until(lambda: stub.completions >= n + 3, timeout=120)
        stub.hold()
        stub.wait_until(lambda: stub.parked == 2, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        stub.wait_until(lambda: stub.counts["abandoned"] == 2, timeout=30)
        stub.release()
        orphans = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, str(out2))]
        assert orphans == []
        check(label(manifest, out2, stub), (0,))
        assert stub.completions == 2 * n and sorted(x["id"] for x in read(out2)) == sorted(ids)


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


# -- label: deadline and budget ----------------------------------------------------------------
def test_timeout_bounds_the_whole_request_against_a_trickling_server(tmp_path):
    # slow: one label run held by the deadline (~7 s)
    manifest, ids = make_manifest(tmp_path / "m", 1)
    with OpenAIStub(responder=responder) as stub:
        stub.faults.append(Fault("trickle", delay=0.1, times=None))  # one byte every 0.1 s: ~1,000 bytes = 100 s
        t0 = time.monotonic()
        r = check(label(manifest, tmp_path / "out" / "l.jsonl", stub, "--timeout", "3", "--max-retries", "0"), (1,))
        wall = time.monotonic() - t0
        stub.wait_until(lambda: stub.counts["abandoned"] == 1, timeout=10)
    assert [f["reason"] for f in read(tmp_path / "out" / "l.failures.jsonl")] == ["timeout"]
    # a per-read timeout would have taken the whole body; the deadline cut it after ~3 s of it
    assert 5 <= stub.counts["trickled bytes"] <= 40, stub.counts
    print(f"trickling server, --timeout 3: label run {wall:.1f} s in all (process start included), "
          f"{stub.counts['trickled bytes']} bytes received; load {os.getloadavg()[0]:.1f}")
    assert "timeout: 1" in r.stdout


def test_budget_holds_when_every_character_is_a_token(tmp_path):
    # A caption of 3,000 CJK characters billed at one token each (as a dense script can be): an
    # estimate of ~3 characters per token would reserve a third of the bill; the bound (UTF-8
    # bytes, 3 per character here) reserves more than it, so the budget is never exceeded.
    n = 6
    caps = [f"Fig. {k}. [[img-{k}]] " + "断口" * 1500 for k in range(n)]
    manifest, _ = make_manifest(tmp_path / "m", n, captions=caps)
    prices = write(tmp_path / "prices.yaml", "models:\n  gpt-5.2: {input: 1000, cached_input: 1000, output: 1000}\n")

    def bill(kind, body):  # one token per character of the request text + the image's tile count
        return {"input": len(text_of(body)) + 255, "cached": 0, "output": 300, "reasoning": 0}

    with OpenAIStub(responder=responder, usage=bill) as stub:
        r = check(label(manifest, tmp_path / "out" / "l.jsonl", stub, "--prices", prices, "--budget-usd", "60",
                        "--max-output-tokens", "500", "--concurrency", "1"), (1,))
    spent = float(r.stdout.split("cost this run: $")[1].split()[0])
    billed = [(len(text_of(b)) + 255 + 300) / 1000 for p, b, _ in stub.requests if p == "/v1/responses"]
    reasons = {f["reason"] for f in read(tmp_path / "out" / "l.failures.jsonl")}
    assert stub.completions >= 1 and reasons == {"budget_exhausted"} and spent == pytest.approx(sum(billed))
    assert spent <= 60.0
    worst = float(re.search(r"this request could cost \$([\d.]+)", read(tmp_path / "out" / "l.failures.jsonl")[0]["detail"])[1])
    print(f"budget $60: spent ${spent:.2f} on {stub.completions} requests (billed ${billed[0]:.2f} each), "
          f"reserved ${worst:.2f} each: margin {worst / billed[0]:.2f}x")
    assert worst > billed[0]  # the reservation is an upper bound of the bill

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
from tests.support.hostile_corpus import (SURROGATE, NOT_UTF8, YAML_KINDS, api_entry, assert_outputs_readable,
                                          color_gold, damaged_sqlite, deep_json, symlink_loop, unwritable_dir, write,
                                          write_lines)
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
        (f'{{"id": "{"c" * 64}", "image": "a\\u0000b.png"}}', "missing_image"),
        (f'{{"id": "{"d" * 64}", "image": "loop.png"}}', "missing_image"),
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

    # the same deadline in the SDK's synchronous client (fracbench's endpoints, analyze's generalist)
    gold, ids, _ = color_gold(tmp_path / "g", 1)
    with OpenAIStub(responder=lambda kind, body: "Features: gas pores " + "x" * 2000) as stub:
        stub.faults.append(Fault("trickle", delay=0.1, times=None))
        entry = write(tmp_path / "slow.yaml", api_entry(tmp_path, "slow", stub.base_url, None).read_text()
                      .replace("timeout_s: 20", "timeout_s: 2"))
        check(bench("infer", "--model", entry, "--gold", gold, "--out", tmp_path / "b", "--cache", tmp_path / "c.sqlite",
                    key=None), (0,))
        stub.wait_until(lambda: stub.counts["abandoned"] == 1, timeout=10)
    row, = read(tmp_path / "b" / "predictions" / "slow.jsonl")
    assert row["status"] == "failed" and row["error"].startswith("APITimeoutError") and stub.counts["trickled bytes"] <= 30


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


# -- label: batch output lines -----------------------------------------------------------------
def test_batch_output_lines_of_every_wrong_shape_are_counted(tmp_path):
    manifest, ids = make_manifest(tmp_path / "m", 3)
    out = tmp_path / "out" / "labels.jsonl"
    with OpenAIStub(responder=responder) as stub:
        run_batch = stub.run_batch

        def hostile_batch(batch):  # the provider's output file, then lines no provider should write
            run_batch(batch)
            f = stub.files[batch["output_file_id"]]
            lines = f["content"].decode().split("\n")
            good = [json.loads(ln) for ln in lines if ln.strip()]
            by_key = {g["custom_id"]: g for g in good}
            first, second = sorted(by_key)[:2]
            sur = json.loads(json.dumps(by_key[first]))
            sur["response"]["body"]["output"][-1]["content"][0]["text"] = json.dumps(good_answer(0, "bad \ud800"))
            shaped = {"custom_id": second, "response": "not an object"}
            keep = [json.dumps(g) for k, g in by_key.items() if k not in (first, second)]
            f["content"] = "\n".join([deep_json(), "[1]", json.dumps(sur), json.dumps(shaped), '{"custom_id": 5}',
                                      *keep, ""]).encode()
        stub.run_batch = hostile_batch
        check(label(manifest, out, stub, "--mode", "batch"), (0,))
        r = check(label(manifest, out, stub, "--mode", "batch", "--resume"), (1,))
    assert "batch lines ignored (malformed JSON) 2" in r.stdout and "(unknown or repeated custom_id) 1" in r.stdout
    fails = read(tmp_path / "out" / "labels.failures.jsonl")
    assert sorted(f["reason"] for f in fails) == ["batch_error", "unencodable_text"]
    assert len(read(out)) == 1 and len(fails) + len(read(out)) == len(ids)
    assert assert_outputs_readable(tmp_path / "out") >= 3


# -- fracbench ---------------------------------------------------------------------------------
BENCH_KEY_ENV = "FRACBENCH_HOSTILE_KEY"


def bench(*argv, key: str | None = "q~Z", timeout=300):
    return run(list(argv), program="fracbench", env={BENCH_KEY_ENV: key} if key else {}, timeout=timeout)


def chat(text) -> dict:
    return {"id": "c1", "object": "chat.completion", "model": "gpt-5.5-stub", "usage": {"prompt_tokens": 10},
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


BENCH_ANSWERS = {  # gold item -> (what the server sends, the row's status, what its error starts with)
    1: ("Features: gas pore \ud800", "failed", "unencodable_text: the answer's raw: character 19 is U+D800"),
    2: (b"[]", "failed", "malformed response: the body is a JSON list"),
    3: (_body({"choices": "x"}), "failed", "malformed response: choices[0].message"),
    4: (_body(chat({"a": 1})), "failed", "malformed response: choices[0].message"),
    5: (deep_json().encode(), "failed", "malformed response: the body is not JSON (nested too deeply"),
    6: (_body({**chat("Features: gas pores"), "usage": "x", "model": 5}), "ok", None),
    7: ("Features: " + "[" * 100_000, "empty", None),
    8: ("Features: gas pores, seen with key q~Z", "ok", None),
}


def test_fracbench_answers_of_every_wrong_shape_are_failed_rows_and_a_rerun_recovers(tmp_path):
    # slow: two infer runs (~8 s)
    gold, ids, markers = color_gold(tmp_path / "g", 9)

    def hostile(kind, body):
        raw = json.dumps(body)
        k = next(i for i, m in enumerate(markers) if m in raw)
        return BENCH_ANSWERS[k][0] if k in BENCH_ANSWERS else "Features: gas pores"

    with OpenAIStub(responder=hostile, api_key="q~Z") as stub:
        entry = api_entry(tmp_path, "api", stub.base_url, BENCH_KEY_ENV)
        argv = ["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "out", "--cache", tmp_path / "c.sqlite"]
        check(bench(*argv), (0,))
        got = {r["id"]: r for r in read(tmp_path / "out" / "predictions" / "api.jsonl")}
        assert list(got) == ids  # one row per gold id, in gold order
        for k, (_, status, error) in BENCH_ANSWERS.items():
            assert got[ids[k]]["status"] == status and (error is None or got[ids[k]]["error"].startswith(error)), got[ids[k]]
        assert got[ids[8]]["raw"] == "Features: gas pores, seen with key ***" and got[ids[0]]["status"] == "ok"
        assert "response_model" not in got[ids[6]] and got[ids[6]]["usage"] is None
        assert_outputs_readable(tmp_path / "out")
        stub.responder = lambda kind, body: "Features: gas pores"
        r = check(bench(*argv), (0,))
        assert "9 rows (4 cached, 5 computed" in r.stdout  # the five failures, asked again
        assert [x["status"] for x in read(tmp_path / "out" / "predictions" / "api.jsonl")] == ["ok"] * 7 + ["empty", "ok"]
    for p in [*(tmp_path / "out").rglob("*"), tmp_path / "c.sqlite"]:
        assert not p.is_file() or b"q~Z" not in p.read_bytes(), p


def test_fracbench_one_line_errors(tmp_path):
    # slow: twelve short runs (~30 s)
    gold, ids, _ = color_gold(tmp_path / "g", 2)
    good = gold.read_text().splitlines()
    bad_gold = {
        "lone_surrogate": write_lines(tmp_path / "g" / "sur.jsonl", [good[0][:-1] + f', "note": "{SURROGATE}"}}']),
        "deep": write_lines(tmp_path / "g" / "deep.jsonl", [good[0], deep_json()]),
    }
    entry = api_entry(tmp_path, "api", "http://127.0.0.1:9/v1", BENCH_KEY_ENV)
    loop = symlink_loop(tmp_path / "loop")
    damaged = damaged_sqlite(tmp_path / "damaged.sqlite")
    base = ["infer", "--gold", gold, "--out", tmp_path / "out", "--cache", tmp_path / "c.sqlite"]
    cases = [  # (argv, key, what the one error line must hold)
        (["infer", "--model", entry, "--gold", bad_gold["lone_surrogate"]], "k",
         "sur.jsonl:1: unencodable_text (note: character 0 is U+D800"),
        (["infer", "--model", entry, "--gold", bad_gold["deep"]], "k", "deep.jsonl:2: malformed_json (nested too deeply"),
        ([*base, "--model", entry, "--cache", damaged], "k", f"{damaged}: not a usable fracbench prediction cache"),
        ([*base, "--model", entry, "--out", loop], "k", f"{loop}/.fracbench.lock: cannot create the lock file"),
        ([*base, "--model", entry], "sk-\u00e9", f"{BENCH_KEY_ENV} holds a character that cannot go in an HTTP header"),
    ]
    for kind in ("non_utf8", "deep", "alias_bomb"):
        task = write(tmp_path / "tasks" / f"{kind}.yaml", YAML_KINDS[kind])
        cases.append(([*base, "--model", entry, "--task", task], "k", f"{task}: "))
    for kind in ("nul", "lone_surrogate", "not_a_mapping"):
        model = write(tmp_path / "models" / f"{kind}.yaml", YAML_KINDS[kind])
        cases.append(([*base, "--model", model], "k", f"{model}: "))
    for argv, key, message in cases:
        r = check(bench(*argv, key=key), (2,))
        assert len(r.errors) == 1 and message in r.errors[0], (argv, r.errors)
    assert not (tmp_path / "out" / "predictions").exists()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A predictions folder made by `fracbench infer` (2 items), and the metrics `score` made of it."""
    tmp = tmp_path_factory.mktemp("scored")
    gold, ids, _ = color_gold(tmp / "g", 2)
    with OpenAIStub(responder=lambda kind, body: "Features: gas pores") as stub:
        entry = api_entry(tmp, "api", stub.base_url, None)
        check(bench("infer", "--model", entry, "--gold", gold, "--out", tmp / "out", "--cache", tmp / "c.sqlite"), (0,))
    check(bench("score", "--out", tmp / "out"), (0,))
    return tmp / "out"


SCORE_CASES = {  # what replaces part of predictions/api.jsonl or .meta.json -> what the error says
    "deep_row": ("rows", lambda rows: [rows[0], deep_json()], ":2: malformed JSON (nested too deeply"),
    "list_row": ("rows", lambda rows: ["[1]", rows[1]], ":1: a JSON list, not an object"),
    "labels_not_list": ("rows", lambda rows: [rows[0].replace('"labels": ["gas_pore"]', '"labels": 7'), rows[1]],
                        ":1: not a row written by `fracbench infer`"),
    "surrogate_row": ("rows", lambda rows: [rows[0].replace('"raw": "', f'"raw": "{SURROGATE}'), rows[1]],
                      ":1: not a row written by `fracbench infer` (raw: character 0 is U+D800"),
    "non_utf8_row": ("rows", lambda rows: [rows[0], NOT_UTF8], ":2: not UTF-8 (byte 0)"),
    "meta_not_json": ("meta", lambda meta: "{not json", "predictions meta file is not valid JSON"),
    "meta_shape": ("meta", lambda meta: json.dumps({**json.loads(meta), "task": "t"}), "not a meta file written by"),
}


@pytest.mark.parametrize("case", sorted(SCORE_CASES))
def test_fracbench_score_refuses_predictions_it_did_not_write(scored, tmp_path, case):
    import shutil

    out = shutil.copytree(scored, tmp_path / "out")
    what, change, message = SCORE_CASES[case]
    path = out / "predictions" / ("api.jsonl" if what == "rows" else "api.meta.json")
    if what == "rows":
        write_lines(path, change(path.read_text().splitlines()))
    else:
        write(path, change(path.read_text()))
    before = (out / "metrics.json").read_bytes()
    r = check(bench("score", "--out", out, key=None), (2,))
    assert len(r.errors) == 1 and r.errors[0].startswith(f"error: {path}") and message in r.errors[0], r.errors
    assert (out / "metrics.json").read_bytes() == before  # nothing half-written


@pytest.mark.parametrize("metrics", ["deep", "list", "shape"])
def test_fracbench_report_refuses_metrics_it_did_not_write(scored, tmp_path, metrics):
    import shutil

    out = shutil.copytree(scored, tmp_path / "out")
    text = {"deep": deep_json(), "list": "[]", "shape": json.dumps({"models": {"api": 1}, "provenance": {}})}[metrics]
    write(out / "metrics.json", text)
    r = check(bench("report", "--out", out, key=None), (2,))
    assert len(r.errors) == 1 and r.errors[0].startswith(f"error: {out / 'metrics.json'}: "), r.errors
    assert not (out / "report.md").exists()


def test_a_second_fracbench_infer_on_the_same_out_stops_with_one_line(tmp_path):
    gold, ids, _ = color_gold(tmp_path / "g", 3)
    with OpenAIStub(responder=lambda kind, body: "Features: gas pores") as stub:
        entry = api_entry(tmp_path, "api", stub.base_url, None)
        argv = ["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "out", "--cache", tmp_path / "c.sqlite"]
        stub.hold()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1] / p) for p in ("", "benchmarks")]))
        first = subprocess.Popen([sys.executable, "-m", "fracbench", *map(str, argv)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            stub.wait_until(lambda: stub.parked >= 1, timeout=120)
            r = check(bench(*argv, key=None), (2,))
        finally:
            stub.release()
            assert first.wait(timeout=120) == 0
        assert r.errors[0].startswith(f"error: {tmp_path / 'out'}: another fracbench infer/run is writing here ")
        assert int(HOLDER.search(r.errors[0])[1]) == first.pid
        assert stub.completions == 3  # the second run asked nothing


# -- analyze -----------------------------------------------------------------------------------
def test_analyze_generalist_bodies_of_every_wrong_shape_flag_the_image_and_every_output_is_written(tmp_path):
    # slow: one analyze run over five images (~8 s)
    from tests.support.analyze_kit import GEN_KEY_ENV, gen_entry, gen_responder, make_images, prices, spec_entry, spec_responder

    key = "g~3"
    seq = iter(range(100))

    def gen(kind, body):
        k = next(seq)
        report = gen_responder(kind, body)
        if k == 0:
            report["fracture_mode"]["text"] += f" (the key is {key})"
            return report
        if k == 2:
            report["mechanism"]["text"] = "cyclic \ud800 loading"
            return json.dumps(report)  # the escape survives as text: the client reads a lone surrogate
        return {1: b"[1]", 3: deep_json().encode(), 4: _body({"status": "completed", "output": {"x": 1}})}[k]

    imgs = make_images(tmp_path / "img", 5)
    with OpenAIStub(responder=spec_responder) as spec, OpenAIStub(responder=gen, api_key=key) as g:
        argv = ["analyze", *imgs, "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist",
                gen_entry(tmp_path, g.base_url), "--prices", prices(tmp_path), "--out", tmp_path / "out"]
        r = check(run(argv, env={GEN_KEY_ENV: key, "FRACDATA_SPECIALIST": ""}), (1,))
    assert "analysed 5 of 5 images" in r.stdout and "1 with the generalist's report" in r.stdout
    from fracdata.records import sha256_file

    got = [json.loads((tmp_path / "out" / f"{sha256_file(p)[:12]}.json").read_text()) for p in imgs]
    assert "(the key is ***)" in got[0]["generalist"]["report"]["fracture_mode"]["text"]
    details = [next(f["detail"] for f in a["flags"] if f["kind"] == "generalist_failed") for a in got[1:]]
    assert [d.split(": ")[1] for d in details] == ["malformed_response", "unencodable_text", "malformed_response",
                                                   "malformed_response"]
    assert len(list((tmp_path / "out").glob("*.png"))) == 5 and assert_outputs_readable(tmp_path / "out") == 11
    for p in (tmp_path / "out").rglob("*"):
        assert key.encode() not in p.read_bytes(), p


def test_analyze_a_specialist_body_of_the_wrong_shape_is_one_line(tmp_path):
    from tests.support.analyze_kit import make_images, spec_entry

    img, = make_images(tmp_path / "img", 1)
    with OpenAIStub(responder=lambda kind, body: _body({"choices": [{"message": None}]})) as spec:
        r = check(run(["analyze", img, "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist", "none",
                       "--out", tmp_path / "out"], env={"FRACDATA_SPECIALIST": ""}), (2,))
        url = spec.base_url
    assert r.errors == [f"error: specialist spec at {url} failed: malformed response: choices[0].message is "
                        "not an object with text content"]


# -- audit and review --------------------------------------------------------------------------
def test_audit_reads_hostile_labels_and_refuses_unreadable_sheets(tmp_path):
    manifest, ids = make_manifest(tmp_path / "m", 3)
    lab = [{"id": i, "features": [TAX.ids[k]], "labeler": {"kind": "gpt"}} for k, i in enumerate(ids)]
    labels = write_lines(tmp_path / "labels.jsonl", [json.dumps(x) for x in lab] + [
        f'{{"id": "{ids[0]}", "features": [], "labeler": {{"kind": "gpt"}}, "rationale": "{SURROGATE}"}}', deep_json()])
    r = check(run(["audit", "sample", "--labels", labels, "--manifest", manifest, "--n", "3",
                   "--out", tmp_path / "a.csv"]), (0,))
    assert f"read {labels}: 3 labelled images, 2 rejected lines" in r.stdout  # 3 + 2 = the 5 lines
    for name, data, message in (("nul.csv", b"id,human_features\n\x00,none\n", ":2: id '\\x00'... is not in"),
                                ("latin1.csv", b"id,human_features\n" + NOT_UTF8, ": not UTF-8 (byte 18)"),
                                ("huge.csv", b"id,human_features\nx," + b"a" * 200_000 + b"\n", ": not a readable CSV")):
        r = check(run(["audit", "score", "--sample", write(tmp_path / name, data), "--labels", labels]), (2,))
        assert len(r.errors) == 1 and r.errors[0].startswith(f"error: {tmp_path / name}{message}"), r.errors


def test_review_import_of_hostile_exports(tmp_path):
    # slow: four review runs (~8 s)
    from PIL import Image

    from tests.support.review_kit import answer_result, export_task

    collection, out = tmp_path / "collection", tmp_path / "review"
    collection.mkdir()
    for k in range(2):  # the review computes the ids itself: a manual collection
        Image.new("RGB", (96 + 8 * k, 80), (60 * k, 90, 30)).save(collection / f"img{k}.png")
    check(run(["review", "manual", "--folder", collection, "--out", out]), (0,))
    data = [t["data"] for t in json.loads((out / "tasks.json").read_text())]
    tasks = [export_task(k + 1, d, [(1, answer_result(["gas_pore"], TAX), {}), (2, answer_result(["gas_pore"], TAX), {})])
             for k, d in enumerate(data)]
    tasks[1]["annotations"][1]["lead_time"] = "\ud800"  # one annotation with text that could never be written
    names = ["--annotator=1=ann1@x.test", "--annotator=2=ann2@x.test"]
    r = check(run(["review", "import", out, "--export", write(tmp_path / "e.json", json.dumps(tasks)), *names]), (0,))
    # kept + rejected = read: the first review of a manual image wins, the unwritable one is refused
    assert f"read 4 annotations from {tmp_path / 'e.json'}: 2 kept, 2 rejected (extra_review: 1, unencodable_text: 1;" in r.stdout
    rejects = [json.loads(x) for x in (out / "import.rejects.jsonl").read_text().splitlines()]
    assert sorted(x["reason"] for x in rejects) == ["extra_review", "unencodable_text"]
    assert len(read(collection / "labels.jsonl")) == 2 and assert_outputs_readable(out) >= 3
    for text, message in ((deep_json(), "not valid JSON (nested too deeply"), ('"a string"', "not a Label Studio JSON export"),
                          (NOT_UTF8, "not valid JSON (")):
        r = check(run(["review", "import", out, "--export", write(tmp_path / "x.json", text), *names]), (2,))
        assert len(r.errors) == 1 and message in r.errors[0], r.errors


# -- configs: recipes, train, taxonomy ---------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(YAML_KINDS))
def test_hostile_recipe_yaml_is_one_line(tmp_path, kind):
    recipe = write(tmp_path / f"{kind}.yaml", YAML_KINDS[kind])
    r = check(run(["recipes", "render", recipe]), (2,))
    assert len(r.errors) == 1 and r.errors[0].startswith(f"error: {recipe}: "), r.errors


def test_hostile_train_set_and_taxonomy_yaml_are_one_line(tmp_path):
    deep = write(tmp_path / "deep.yaml", YAML_KINDS["deep"])
    for argv, message in ((["train", deep, "--dry-run"], f"{deep}: the recipe file is nested too deeply"),
                          (["recipes", "render", "smoke/tiny_qwen3vl_lora_sft.yaml", "--set", "lora_rank=" + "[" * 5000],
                           "--set lora_rank=...: the value is not a YAML scalar"),
                          (["taxonomy", "--taxonomy", deep], f"{deep}: the taxonomy file is nested too deeply"),
                          (["taxonomy", "--taxonomy", write(tmp_path / "bomb.yaml", YAML_KINDS["alias_bomb"])],
                           "expands to more than 1,000,000 values")):
        r = check(run(argv), (2,))
        assert len(r.errors) == 1 and message in r.errors[0], r.errors


# -- harvest: hostile server answers -----------------------------------------------------------
def test_harvest_reads_hostile_server_answers_as_counted_rejects(tmp_path):
    # slow: two harvest runs (~8 s)
    from tests.support.archive_server import ArchiveStub
    from tests.support.harvest_kit import real_article

    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for c, p in zip("bcdefghij", "abcdefghi"))
            + ']><ListBucketResult><CommonPrefixes><Prefix>&j;</Prefix></CommonPrefixes></ListBucketResult>')

    class Hostile(ArchiveStub):
        def answer(self, target):
            if target.startswith("/pmc/metadata/PMC901."):
                return 200, deep_json().encode(), "application/json"
            if target.startswith("/pmc/metadata/PMC903."):
                return 200, json.dumps({"pmcid": "PMC903", "version": 1, "license_code": "CC BY \ud800"}).encode(), "application/json"
            if "prefix=PMC902." in target:
                return 200, bomb.encode(), "application/xml"
            if "prefix=PMC90" in target:
                pid = target.split("prefix=")[1].split(".")[0]
                return 200, (f"<ListBucketResult><CommonPrefixes><Prefix>{pid}.1/</Prefix></CommonPrefixes>"
                             "</ListBucketResult>").encode(), "application/xml"
            return super().answer(target)

    argv = ["harvest", "--email", "x@example.org", "--search-rate", "200", "--archive-rate", "200", "--retries", "0"]
    with Hostile() as stub:
        stub.add(real_article("elife00240.xml", "PMC100", seed=1))
        stub.extra_hits += [{"pmcid": ["not", "text"], "title": "a list for a PMCID"},
                            {"pmcid": "PMC900", "journalInfo": "a string", "title": "title \ud800", "doi": 7},
                            {"pmcid": "PMC901"}, {"pmcid": "PMC902"}, {"pmcid": "PMC903"}, "not an object"]
        r = check(run([*argv, "--out", tmp_path / "h", "--search-url", stub.search_url, "--archive-url", stub.archive_url]),
                  (0, 1))
    assert re.search(r"articles 6 = 1 kept \+ 5 rejected", r.stdout), r.stdout  # the 6 hits that are objects
    ledger = [json.loads(x) for x in (tmp_path / "h" / "harvest.jsonl").read_text().splitlines()]
    assert len(ledger) == 6 and sum(x["status"] == "kept" for x in ledger) == 1
    assert assert_outputs_readable(tmp_path / "h", skip=(".jpg", ".xml", ".lock", ".pdf", ".gif")) >= 2

    class DeepSearch(ArchiveStub):
        def answer(self, target):
            return (200, deep_json().encode(), "application/json") if target.startswith("/europepmc/") else super().answer(target)

    with DeepSearch() as stub:
        r = check(run([*argv, "--out", tmp_path / "h2", "--search-url", stub.search_url, "--archive-url", stub.archive_url]),
                  (2,))
    assert len(r.errors) == 1 and "Europe PMC search: unexpected answer" in r.errors[0] and "nested too deeply" in r.errors[0]


# -- mine: hostile JATS ------------------------------------------------------------------------
def test_mine_reads_hostile_jats_as_counted_source_rejects(tmp_path):
    from tests.support.jats_kit import write_article

    papers = tmp_path / "papers"
    write_article(papers / "good")
    bomb = ('<?xml version="1.0"?><!DOCTYPE article [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for c, p in zip("bcdefghij", "abcdefghi"))
            + "]><article><body><p>&j;</p></body></article>")
    hostile = {
        "deep.nxml": "<article>" + "<sec>" * 10_000 + "</sec>" * 10_000 + "</article>",  # lxml's 256-level limit
        "bomb.nxml": bomb,  # 10^9 characters, refused by lxml's amplification limit
        "wrong_encoding.nxml": '<?xml version="1.0" encoding="UTF-8"?><article><p>caf\xe9</p></article>'.encode("latin-1"),
        "surrogate_ref.nxml": "<article><body><p>&#xD800;</p></body></article>",
        "nul.nxml": b"<article>\x00</article>",
        "empty.nxml": b"",
    }
    for name, data in hostile.items():
        write(papers / name, data)
    symlink_loop(papers / "loop.nxml")
    r = check(run(["mine", papers, "--out", tmp_path / "out"]), (0,))
    assert "sources  8 = 1 parsed + 7 rejected" in r.stdout, r.stdout
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    by_file = {x["file"].split("/")[-1]: x["reason"] for x in rejects if "good/" not in x["file"]}
    assert by_file == {**{n: "malformed_xml" for n in hostile}, "loop.nxml": "unreadable_source"}
    assert assert_outputs_readable(tmp_path / "out") >= 3


# -- label: the rerun check reads what the request holds ---------------------------------------
def test_a_changed_caption_is_asked_again_and_an_old_cache_is_kept(tmp_path):
    import sqlite3

    manifest, ids = make_manifest(tmp_path / "m", 3)
    out = tmp_path / "out" / "labels.jsonl"
    with OpenAIStub(responder=responder) as stub:
        check(label(manifest, out, stub), (0,))
        rows = read(manifest)
        rows[1]["caption"] += " (revised\u2028caption)"  # a line separator: the reader and the check agree
        write_lines(manifest, [json.dumps(r, ensure_ascii=False) for r in rows])
        r = check(label(manifest, out, stub), (0,))
        assert "2 already in" in r.stdout and "1 to ask (1 answered for another caption or excerpts)" in r.stdout
        assert stub.completions == 4
        # a cache written before the source check (no source_sha256 column): its answers are kept
        db = sqlite3.connect(tmp_path / "out" / "labels.cache.sqlite")
        db.executescript("CREATE TABLE old AS SELECT key, image_id, fields, request_id, response_model, usage, cost_usd, "
                         "created, via FROM results; DROP TABLE results; ALTER TABLE old RENAME TO results;")
        db.close()
        r = check(label(manifest, out, stub), (0,))
        assert "3 already in" in r.stdout and stub.completions == 4

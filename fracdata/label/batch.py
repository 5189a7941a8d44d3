"""Batch API mode: shards of <= 50,000 requests and <= 200 MB, custom_id = cache key.

    fracdata label ... --mode batch            # write shards, upload, create batches, save state
    fracdata label ... --mode batch --resume   # poll; ingest finished batches; resubmit failures

State (<stem>.batch/state.json) is rewritten atomically after every batch is created, so a
crash never forgets a batch that is being paid for. Ingesting reads the output file (answers,
classified exactly like realtime ones) and the error file (HTTP errors per line); a request in
neither file (expired, cancelled) fails as `batch_missing`. Failed images are resubmitted as a
new batch once all batches of the state have been ingested.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from fracdata.files import atomic_write_bytes
from fracdata.errors import FracdataError
from fracdata.label.client import Outcome, classify
from fracdata.label.prompt import IMAGE_ERRORS
from fracdata.label.sync import failure, now_iso
from fracdata.untrusted import loads

MAX_LINES = 50_000  # Batch API limits per input file
MAX_BYTES = 200 * 1_000_000
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def _save(state: dict, path: Path) -> None:
    atomic_write_bytes(path, json.dumps(state, indent=1, sort_keys=True).encode(), durable=True)


def _shards(lines: list[tuple[str, bytes]], max_lines: int, max_bytes: int):
    """Group (key, line) pairs into shards under both limits, in order."""
    shard, size = [], 0
    for key, line in lines:
        if len(line) > max_bytes:
            raise FracdataError(f"one batch request is {len(line):,} bytes, over the {max_bytes:,} byte limit")
        if shard and (len(shard) == max_lines or size + len(line) > max_bytes):
            yield shard
            shard, size = [], 0
        shard.append((key, line))
        size += len(line)
    if shard:
        yield shard


def submit(todo, prompter, budget, client, state: dict, folder: Path, manifest, failures,
           max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> int:
    """Write, upload and create batches for `todo`; returns how many requests were submitted."""
    url = "/v1/responses" if prompter.params.api == "responses" else "/v1/chat/completions"
    lines = []
    for item in todo:
        try:
            body, _, bound = prompter.body(item.path, item.caption, item.excerpts)
        except IMAGE_ERRORS as e:
            failures.append(failure(item, manifest, "unreadable_image", f"{item.path.name}: {e}"))
            continue
        worst = budget.worst_case(bound)
        if not budget.reserve(worst):
            failures.append(failure(item, manifest, "budget_exhausted", f"not submitted: --budget-usd {budget.limit}"))
            continue
        row = {"custom_id": item.key, "method": "POST", "url": url, "body": body}
        lines.append((item.key, (json.dumps(row) + "\n").encode()))
    n = 0
    for shard in _shards(lines, max_lines, max_bytes):
        name = f"shard-{len(state['batches']) + 1:04d}.jsonl"
        atomic_write_bytes(folder / name, b"".join(line for _, line in shard))
        with open(folder / name, "rb") as f:
            uploaded = client.files.create(file=(name, f), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=url, completion_window="24h",
                                      metadata={"fracdata_shard": name})
        state["batches"].append({"id": batch.id, "shard": name, "input_file_id": uploaded.id,
                                 "keys": [k for k, _ in shard], "status": batch.status, "ingested": False,
                                 "reserved_usd": 0.0})
        _save(state, folder / "state.json")
        n += len(shard)
        print(f"submitted {batch.id}: {len(shard):,} requests, {sum(len(l) for _, l in shard):,} bytes ({name})")
    return n


def _batch_row(line: str) -> dict | None:
    try:
        row = loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def _obj(v) -> dict:
    return v if isinstance(v, dict) else {}


def ingest(entry: dict, batch, client, by_key: dict, prompter, cache, budget, manifest, failures, stats) -> None:
    seen = set()
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        # "\n" only, as JSONL is read everywhere: str.splitlines() would also cut at U+2028 inside a string
        for lineno, line in enumerate(client.files.content(file_id).text.split("\n"), 1):
            if not line.strip():
                continue
            row = _batch_row(line)
            if row is None:  # its image, if any, fails below as batch_missing and is resubmitted
                stats["batch lines ignored (malformed JSON)"] += 1
                print(f"warning: {batch.id} file {file_id} line {lineno}: not a JSON object; ignored")
                continue
            custom_id = row.get("custom_id")
            item = by_key.get(custom_id) if isinstance(custom_id, str) else None
            if item is None or item.key in seen:
                stats["batch lines ignored (unknown or repeated custom_id)"] += 1
                continue
            seen.add(item.key)
            resp = _obj(row.get("response"))  # every part may be of the wrong shape: a failure, never a crash
            rid = resp.get("request_id")
            out = Outcome(ok=False, request_id=rid if isinstance(rid, str) else None)
            code = resp.get("status_code")
            code = code if isinstance(code, int) else None
            if code == 200:
                classify(prompter.params.api, _obj(resp.get("body")), prompter, out)
            else:
                err = row.get("error") or _obj(resp.get("body")).get("error") or {}
                reason = "rate_limited" if code == 429 else "server_error" if (code or 0) >= 500 else "batch_error"
                out.fail(reason, f"batch line HTTP {code}: {_obj(err).get('message') or err}")
            cost = budget.settle(0.0, out.usage)
            if out.redacted:
                stats["answers that held the key (redacted)"] += 1
            if out.ok:
                cache.put(item.key, item.id, out.fields, out.request_id, out.response_model, out.usage, cost,
                          now_iso(), "batch", item.source)
                stats["labelled"] += 1
            else:
                rid = f" (request {out.request_id})" if out.request_id else ""
                failures.append(failure(item, manifest, out.reason, f"{out.detail}{rid} in {batch.id}"))
    for key in entry["keys"]:
        if key not in seen and key in by_key:
            failures.append(failure(by_key[key], manifest, "batch_missing",
                                    f"no output or error line in {batch.id} (status {batch.status})"))


def _load_state(path: Path) -> dict:
    """The batch state, or an error naming it: a damaged one could forget batches being paid for."""
    if not path.is_file():
        return {"batches": []}
    try:
        state = loads(path.read_bytes().decode("utf-8"))
        ok = isinstance(state.get("batches"), list) and all(
            isinstance(b, dict) and isinstance(b.get("id"), str) and isinstance(b.get("keys"), list)
            and isinstance(b.get("ingested"), bool) for b in state["batches"])
    except (ValueError, AttributeError) as e:  # not UTF-8, not JSON, not an object
        ok, state = False, str(e)
    if not ok:
        raise FracdataError(f"{path}: not a batch state file written by fracdata label; restore it, or move the "
                            "batch folder aside after checking its batches in the provider's dashboard")
    return state


def label_batch(items, todo, prompter, cache, budget, args, manifest, folder: Path):
    from fracdata.llm.clients import client as make_client

    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    state = _load_state(state_path)
    open_batches = [b for b in state["batches"] if not b["ingested"]]
    if open_batches and not args.resume:
        raise FracdataError(f"{state_path}: {len(open_batches)} batches not ingested yet: run with --resume "
                            "(a new submission would pay for the same images twice)")
    client = make_client(max_retries=3, timeout=args.timeout)
    stats, failures = Counter(cached=len(items) - len(todo)), []
    by_key = {i.key: i for i in items}
    deadline = time.monotonic() + args.wait
    while open_batches:
        for entry in open_batches:
            batch = client.batches.retrieve(entry["id"])
            entry["status"] = batch.status
            if batch.status in TERMINAL:
                ingest(entry, batch, client, by_key, prompter, cache, budget, manifest, failures, stats)
                entry["ingested"] = True
                print(f"ingested {batch.id} ({batch.status}): {len(entry['keys'])} requests")
            _save(state, state_path)
        open_batches = [b for b in state["batches"] if not b["ingested"]]
        if not open_batches or time.monotonic() + args.poll_interval > deadline:
            break
        time.sleep(args.poll_interval)
    if open_batches:
        pending = sum(len(b["keys"]) for b in open_batches)
        print(f"{len(open_batches)} batches still running ({pending} requests): "
              + ", ".join(f"{b['id']} {b['status']}" for b in open_batches))
        return failures, stats
    # Everything ingested: what is not cached now (new images and this round's failures) is
    # submitted again. A failed image stays in the failures file (with its reason) until it succeeds.
    done, _ = cache.fresh(items)
    again = [i for i in items if i.key not in done]
    failed = {f.id for f in failures}
    stats["submitted"] += submit(again, prompter, budget, client, state, folder, manifest, failures)
    stats["resubmitted"] += sum(1 for i in again if i.id in failed)
    return failures, stats

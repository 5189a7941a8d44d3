"""Merge shard outputs (`fracdata harvest merge A B ... --out DIR`), as `fracdata mine merge` does.

Each input is a shard's output folder (harvest.jsonl + its article folders). The first line of
a PMCID wins, in the order the inputs are given (shards are disjoint, so a duplicate means the
same shard was given twice or two runs overlapped: counted, never copied twice). Every file of a
kept article is checked against the sha256 in its ledger line before it is hard-linked (or
copied) into DIR/<folder>/; an article with a missing or changed file becomes a reject
(`missing_file`, `file_hash_mismatch`), so the merged ledger never names a file it lacks.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import dump_jsonl, sha256_file
from fracdata.untrusted import loads


def _ledger(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise FracdataError(f"{path}:{lineno}: malformed ledger line: {e}") from None
            if not isinstance(row, dict) or row.get("status") not in ("kept", "rejected"):
                raise FracdataError(f"{path}:{lineno}: malformed ledger line: not a harvest.jsonl entry")
            rows.append(row)
    return rows


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)


def merge(shards: list[str], out: Path) -> dict:
    from fracdata.harvest.pipeline import reject_record

    ledgers = []
    for s in shards:
        p = Path(s) / "harvest.jsonl" if Path(s).is_dir() else Path(s)
        if not p.is_file():
            raise FracdataError(f"{s}: no harvest ledger (expected a shard folder with harvest.jsonl)")
        if p.parent.resolve() == out.resolve():
            raise FracdataError(f"{s}: is the --out folder; merge into a new folder")
        ledgers.append(p)
    out.mkdir(parents=True, exist_ok=True)
    entries, seen, reasons, dup, read, files = [], set(), Counter(), 0, 0, 0
    for p in ledgers:
        for e in _ledger(p):
            read += 1
            key = e.get("pmcid") or e.get("doi") or json.dumps(e, sort_keys=True)
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            if e["status"] == "kept":
                src = p.parent / str(e.get("folder"))
                bad = next(((f["name"], "missing_file") for f in e.get("files", []) if not (src / f["name"]).is_file()),
                           None) or next(((f["name"], "file_hash_mismatch") for f in e.get("files", [])
                                          if sha256_file(src / f["name"]) != f["sha256"]), None)
                if bad:
                    e = {**{k: v for k, v in e.items() if k not in ("files", "folder", "bytes")}, "status": "rejected",
                         "reason": bad[1], "detail": f"{src / bad[0]}: {bad[1].replace('_', ' ')} (shard {p.parent})"}
                else:
                    (out / e["folder"]).mkdir(exist_ok=True)
                    for f in e["files"]:
                        _link(src / f["name"], out / e["folder"] / f["name"])
                        files += 1
            if e["status"] != "kept":
                reasons[e["reason"]] += 1
            entries.append(e)
    kept = sum(e["status"] == "kept" for e in entries)
    rejects = [reject_record(e) for e in entries if e["status"] != "kept"]
    info = {"merged_from": [str(p.parent) for p in ledgers], "counts": {"read": read, "kept": kept,
            "rejected": len(rejects), "duplicates": dup}, "rejects_by_reason": dict(reasons)}
    from fracdata.files import atomic_write_bytes

    atomic_write_bytes(out / "harvest.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    return {"inputs": ledgers, "read": read, "kept": kept, "rejected": len(rejects), "duplicates": dup,
            "reasons": reasons, "files": files, "lines": dump_jsonl(entries, out / "harvest.jsonl"),
            "rejects": dump_jsonl(rejects, out / "rejects.jsonl")}

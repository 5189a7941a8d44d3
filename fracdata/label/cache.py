"""The label cache: SQLite in WAL mode, one row per completed, schema-valid answer.

Only successes are stored, so every failure is asked again on the next run. Each result is
committed the moment it arrives: `kill -9` loses at most the requests still in flight, and a
rerun never pays twice for a completed image. WAL with synchronous=NORMAL survives a killed
process (a commit is in the WAL file once `commit()` returns); only an OS crash or power loss
could roll back the last commits, which would then be asked (and paid) again, never corrupted.
A file that is not a readable SQLite cache (damaged, another file's bytes, a read-only folder) is
one error naming it, never a traceback; a row whose JSON is damaged is simply not cached (asked again).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fracdata.files import sqlite_errors

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,        -- cache key (prompt.Prompter.cache_key)
    image_id TEXT NOT NULL,
    fields TEXT NOT NULL,        -- JSON: LabelRecord fields from the validated answer
    request_id TEXT,
    response_model TEXT,
    usage TEXT,                  -- JSON usage dict
    cost_usd REAL,
    created TEXT NOT NULL,       -- ISO-8601 UTC
    via TEXT NOT NULL            -- responses | chat | batch
)"""


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        with sqlite_errors(self.path, "label cache"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one put = one commit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)

    def get_many(self, keys) -> dict[str, dict]:
        keys, out = list(keys), {}
        with sqlite_errors(self.path, "label cache"):
            for i in range(0, len(keys), 500):  # SQLite's variable limit is 999 on old builds
                chunk = keys[i:i + 500]
                q = f"SELECT * FROM results WHERE key IN ({','.join('?' * len(chunk))})"
                cur = self.db.execute(q, chunk)
                cols = [c[0] for c in cur.description]
                for row in cur:
                    rec = dict(zip(cols, row))
                    try:
                        rec["fields"] = json.loads(rec["fields"])
                        rec["usage"] = json.loads(rec["usage"]) if rec["usage"] else None
                    except (TypeError, ValueError, RecursionError):
                        continue  # a damaged row is not an answer: the image is asked again
                    if isinstance(rec["fields"], dict):
                        out[rec["key"]] = rec
        return out

    def put(self, key: str, image_id: str, fields: dict, request_id: str | None, response_model: str | None,
            usage: dict | None, cost_usd: float, created: str, via: str) -> None:
        with sqlite_errors(self.path, "label cache"):
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?)",
                (key, image_id, json.dumps(fields, sort_keys=True), request_id, response_model,
                 json.dumps(usage, sort_keys=True) if usage else None, cost_usd, created, via))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self.db.close()

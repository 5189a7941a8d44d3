"""The label cache: SQLite in WAL mode, one row per completed, schema-valid answer.

Only successes are stored, so every failure is asked again on the next run. Each result is
committed the moment it arrives: `kill -9` loses at most the requests still in flight, and a
rerun never pays twice for a completed image. WAL with synchronous=NORMAL survives a killed
process (a commit is in the WAL file once `commit()` returns); only an OS crash or power loss
could roll back the last commits, which would then be asked (and paid) again, never corrupted.
The key holds the image and every request parameter; the caption and excerpts are checked
against `source_sha256` instead (`fresh`), so a row answered for other source text is asked
again rather than reported up to date. Rows from caches written before that column existed
have none and are kept.
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
    via TEXT NOT NULL,           -- responses | chat | batch
    source_sha256 TEXT           -- sha256 of the source text sent (caption + excerpts as the prompt holds them)
)"""
COLUMNS = ("key", "image_id", "fields", "request_id", "response_model", "usage", "cost_usd", "created", "via",
           "source_sha256")


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        with sqlite_errors(self.path, "label cache"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one put = one commit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
            if "source_sha256" not in {r[1] for r in self.db.execute("PRAGMA table_info(results)")}:
                self.db.execute("ALTER TABLE results ADD COLUMN source_sha256 TEXT")  # a cache from before the column

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
            usage: dict | None, cost_usd: float, created: str, via: str, source_sha256: str | None = None) -> None:
        with sqlite_errors(self.path, "label cache"):
            self.db.execute(
                f"INSERT OR REPLACE INTO results ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})",
                (key, image_id, json.dumps(fields, sort_keys=True), request_id, response_model,
                 json.dumps(usage, sort_keys=True) if usage else None, cost_usd, created, via, source_sha256))

    def fresh(self, items) -> tuple[dict[str, dict], int]:
        """({key: row} of the items answered for the source text they hold now, how many rows were
        answered for other source text and so are asked again)."""
        rows = self.get_many(i.key for i in items)
        ok = {i.key: rows[i.key] for i in items if i.key in rows and rows[i.key]["source_sha256"] in (None, i.source)}
        return ok, sum(1 for i in items if i.key in rows) - len(ok)

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self.db.close()

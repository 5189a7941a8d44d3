"""The prediction cache and model identities.

One SQLite file (stdlib, safe across the API runner's threads) holds
  predictions  key -> the model's raw answer, latency and usage (successes only: a failure is
               never cached, so the next run retries it)
  files        (path, size, mtime) -> sha256, so a multi-GB checkpoint is hashed once, not per run.
key = sha256 of (task hash, item id, model identity incl. checkpoint hash, decoding, prompt
hash, control); parsing happens after the cache, so a better parser re-scores for free.
Default file: $FRACBENCH_CACHE, else $XDG_CACHE_HOME/fracbench/predictions.sqlite
(~/.cache/fracbench/predictions.sqlite). A damaged cache file is one error naming it; a damaged
row is simply not cached (the item is asked again).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import sqlite_errors

WHAT = "fracbench prediction cache"
# Files of a checkpoint that decide its outputs. Trainer state (optimizer, scheduler, RNG) is
# left out: two checkpoints with equal weights and processor answer the same.
_KEEP_SUFFIX = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt", ".tiktoken")
# calibration.json maps scores after the fact (fracdata calibrate): it never changes an answer or a score
_SKIP_PREFIX = ("optimizer", "scheduler", "rng_state", "training_args", "trainer_state", "README", "calibration")


def default_path() -> Path:
    if os.environ.get("FRACBENCH_CACHE"):
        return Path(os.environ["FRACBENCH_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fracbench" / "predictions.sqlite"


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Cache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self._lock = threading.Lock()
        with sqlite_errors(self.path, WHAT):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS predictions (key TEXT PRIMARY KEY, value TEXT NOT NULL, created TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);")

    def get(self, key: str) -> dict | None:
        with self._lock, sqlite_errors(self.path, WHAT):
            row = self._db.execute("SELECT value FROM predictions WHERE key = ?", (key,)).fetchone()
        try:
            value = json.loads(row[0]) if row else None
        except (TypeError, ValueError, RecursionError):
            return None  # a damaged row is not an answer: asked again
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock, sqlite_errors(self.path, WHAT), self._db:
            self._db.execute("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)", (key, json.dumps(value), now))

    def file_sha256(self, path: Path) -> str:
        from fracdata.records import sha256_file

        st = path.stat()
        with self._lock, sqlite_errors(self.path, WHAT):
            row = self._db.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path = ?", (str(path),)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        digest = sha256_file(path)
        with self._lock, sqlite_errors(self.path, WHAT), self._db:
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (str(path), st.st_size, st.st_mtime_ns, digest))
        return digest

    def close(self) -> None:
        self._db.close()


def checkpoint_sha256(folder: str | Path, cache: Cache) -> str:
    """sha256 over (relative name, sha256) of the files that decide a checkpoint's outputs."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(_KEEP_SUFFIX)
                   and not p.name.startswith(_SKIP_PREFIX) and "checkpoint-" not in p.relative_to(folder).parts[0])
    if not any(p.name.endswith((".safetensors", ".bin")) for p in files):
        raise FracdataError(f"{folder}: no weights (*.safetensors / *.bin) found")
    return sha256_json([[str(p.relative_to(folder)), cache.file_sha256(p)] for p in files])


def model_identity(entry, cache: Cache) -> dict:
    """Everything about a model that can change its answers (decoding is keyed separately)."""
    from fracdata.inference.local import local_folder, resolved_runtime

    if entry.kind == "local":
        path = local_folder(entry.path, "path", entry.name)
        ident = {"kind": "local", "checkpoint": checkpoint_sha256(path, cache), "path": str(path),
                 "image_pixels": [entry.image_min_pixels, entry.image_max_pixels], **resolved_runtime(entry.dtype, entry.fused_patch_embed)}
        if entry.adapter:
            adapter = local_folder(entry.adapter, "adapter", entry.name)
            ident.update(adapter=str(adapter), adapter_sha256=checkpoint_sha256(adapter, cache))
        return ident
    ident = {"kind": entry.kind, "base_url": entry.base_url.rstrip("/"), "model": entry.model}
    if entry.served_path:
        served = local_folder(entry.served_path, "served_path", entry.name)
        ident.update(served_path=str(served), checkpoint=checkpoint_sha256(served, cache),
                     image_pixels=[entry.image_min_pixels, entry.image_max_pixels])  # sent resized as in training
    return ident

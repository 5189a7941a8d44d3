"""Image embeddings from a frozen vision encoder, cached by image id.

The default encoder is the base VLM's own vision tower (any Qwen-VL-style checkpoint that
transformers loads with AutoModelForImageTextToText: `model.model.visual`), fed exactly what
training feeds it (LlamaFactory's resize, fracdata.train.qwen, then the model's own image
processor). An image's embedding is the mean and the standard deviation, over its patch tokens,
of the tower's last hidden states before the patch merger: 2 x hidden values (128 for the tiny
Qwen3-VL, 2,304 for Qwen3-VL-32B's 1,152-wide tower). Why the std beside the mean: fracture
features are textures, and a texture is more its second-order statistics than its mean patch;
on the synthetic corpus with the tiny model's random tower, the logistic-regression AUC by
grouped 5-fold rose from 0.56-0.97 (mean of the merged tokens) to 0.59-1.00 (this pooling).

An encoder is named by the sha256 of its weights, config and processor files (hashed once per
(path, size, mtime), like fracbench's checkpoint identities), the pooling version and the
pixel limits, so a cached vector is reused only for the same encoder and never mixed with
another's. Cache: SQLite, one row per (encoder, image id), the vector as float32 bytes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import sqlite_errors

POOLING = "vision-tower-last-hidden-mean-std-v1"
WHAT = "probe embedding cache"
# Files that decide a checkpoint's outputs (the same rule as fracbench's identities).
KEEP_SUFFIX = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt", ".tiktoken")
SKIP_PREFIX = ("optimizer", "scheduler", "rng_state", "training_args", "trainer_state", "README")


class Cache:
    """SQLite: embeddings by (encoder identity, image id), and file hashes by (path, size, mtime)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with sqlite_errors(self.path, WHAT):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(
                "CREATE TABLE IF NOT EXISTS embeddings (encoder TEXT, id TEXT, dim INTEGER, vec BLOB, "
                "PRIMARY KEY (encoder, id));"
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);")

    def file_sha256(self, path: Path) -> str:
        st = path.stat()
        with sqlite_errors(self.path, WHAT):
            row = self.db.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path = ?", (str(path),)).fetchone()
            if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                return row[2]
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                            (str(path), st.st_size, st.st_mtime_ns, h.hexdigest()))
        return h.hexdigest()

    def get(self, encoder: str, ids) -> dict:
        import numpy as np

        ids, out = list(ids), {}
        with sqlite_errors(self.path, WHAT):
            for k in range(0, len(ids), 500):
                chunk = ids[k:k + 500]
                q = f"SELECT id, dim, vec FROM embeddings WHERE encoder = ? AND id IN ({','.join('?' * len(chunk))})"
                for i, dim, vec in self.db.execute(q, [encoder, *chunk]):
                    if isinstance(vec, bytes) and len(vec) == 4 * dim:  # a damaged row is computed again
                        out[i] = np.frombuffer(vec, dtype=np.float32)
        return out

    def put(self, encoder: str, vectors: dict) -> None:
        import numpy as np

        with sqlite_errors(self.path, WHAT):
            self.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                                [(encoder, i, len(v), np.asarray(v, dtype=np.float32).tobytes()) for i, v in vectors.items()])

    def close(self) -> None:
        self.db.close()


def encoder_identity(folder: Path, cache: Cache, max_pixels: int, min_pixels: int) -> str:
    """sha256 over the checkpoint's files (name + sha256), the pooling and the pixel limits."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(KEEP_SUFFIX)
                   and not p.name.startswith(SKIP_PREFIX))
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise FracdataError(f"{folder}: no model weights (*.safetensors / *.bin): not a checkpoint folder")
    body = {"files": {str(p.relative_to(folder)): cache.file_sha256(p) for p in files}, "pooling": POOLING,
            "pixels": [max_pixels, min_pixels]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Encoder:
    """A checkpoint's vision tower, frozen, on CPU or the visible GPU."""

    def __init__(self, folder: Path, max_pixels: int, min_pixels: int, device: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.processor = AutoProcessor.from_pretrained(folder).image_processor
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
        visual = getattr(getattr(model, "model", model), "visual", None)
        if visual is None:
            raise FracdataError(f"{folder}: {type(model).__name__} has no vision tower (`model.visual`); "
                                "the probe reads Qwen-VL-style checkpoints")
        self.visual = visual.to(self.device).eval()
        self.pixels = (max_pixels, min_pixels)

    def embed(self, images: list) -> list:
        """One float32 vector per PIL image: [mean, std] of the tower's last hidden states."""
        import torch

        from fracdata.train.qwen import lf_preprocess

        batch = [lf_preprocess(im, *self.pixels) for im in images]
        enc = self.processor(images=batch, return_tensors="pt")
        grid = enc["image_grid_thw"]
        with torch.inference_mode():
            out = self.visual(enc["pixel_values"].to(self.device, self.visual.dtype), grid_thw=grid.to(self.device))
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        sizes = grid.prod(-1).tolist()  # patch tokens per image, before the 2x2 merge
        if hidden.shape[0] != sum(sizes):
            raise FracdataError(f"vision tower returned {hidden.shape[0]} tokens for {sum(sizes)} patches")
        return [torch.cat([h.float().mean(0), h.float().std(0, unbiased=False)]).cpu().numpy()
                for h in torch.split(hidden, sizes)]


def embed_all(items: dict, folder: Path, cache: Cache, max_pixels: int, min_pixels: int, batch: int = 16,
              log=print) -> tuple[dict, str, dict]:
    """({id: vector}, encoder identity, counts) for items {id: image path}; computed ones are cached.

    Each image computed here is decoded once, checked against its id (sha256 of its pixels, as
    every stage names it) and embedded; one that does not open or does not match is left out and
    returned in `failed` as {id: (reason, detail)} with a reason of fracdata.records.REASONS.
    """
    import sys

    from tqdm import tqdm

    from fracdata.images import ImageReject, open_normalised, pixel_id

    identity = encoder_identity(folder, cache, max_pixels, min_pixels)
    got = cache.get(identity, items)
    todo = [i for i in items if i not in got]
    failed: dict[str, tuple[str, str]] = {}
    if todo:
        enc = Encoder(folder, max_pixels, min_pixels)
        bar = tqdm(total=len(todo), desc="embed", unit="image", file=sys.stderr, mininterval=2.0)
        for k in range(0, len(todo), batch):
            ids, ims = [], []
            for i in todo[k:k + batch]:
                try:
                    im = open_normalised(items[i])
                except ImageReject as e:
                    failed[i] = (e.reason, f"{items[i]}: {e.detail}")
                    continue
                if pixel_id(im) != i:
                    failed[i] = ("id_mismatch", f"the pixels of {items[i]} hash to {pixel_id(im)}, not the record id")
                    continue
                ims.append(im)
                ids.append(i)
            vecs = dict(zip(ids, enc.embed(ims))) if ims else {}
            cache.put(identity, vecs)  # each batch as it is done: an interrupted run keeps them
            got.update(vecs)
            bar.update(len(todo[k:k + batch]))
        bar.close()
    log(f"embeddings: {len(items) - len(todo)} from {cache.path}, {len(todo) - len(failed)} computed "
        f"({folder.name}'s vision tower, {POOLING})" + (f", {len(failed)} images failed" if failed else ""))
    return got, identity, failed

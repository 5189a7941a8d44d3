"""Shared helpers for the labeller's tests: a manifest of small distinct images, JSONL reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from fracdata.images import image_id


def make_manifest(folder: Path, n: int, captions=None) -> tuple[Path, list[str]]:
    """n small distinct grey PNGs; caption k carries the marker [[img-k]]."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        a = (np.random.default_rng(k).random((24, 32)) * 255).astype(np.uint8)
        name = f"img{k:02d}.png"
        Image.fromarray(a).save(folder / name)
        caption = captions[k] if captions else f"Fig. {k}. Fracture surface [[img-{k}]]."
        rows.append({"id": image_id(folder / name), "image": name,
                     "caption": caption, "excerpts": [f"excerpt {k}"]})
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, [r["id"] for r in rows]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]

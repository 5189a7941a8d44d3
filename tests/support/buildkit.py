"""Helpers for the builder's tests: images and records made in the test, nothing stored."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def noise(seed: int, size=(96, 80), mode: str = "L") -> Image.Image:
    """Blocky seeded noise: every seed gives a perceptual hash ~32 bits from every other."""
    rng = np.random.default_rng(seed)
    bands = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, bands), dtype=np.uint8)
    big = np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))
    return Image.frombytes(mode, size, np.ascontiguousarray(big[..., 0] if bands == 1 else big).tobytes())


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def image_id(data: bytes) -> str:
    """The record id of image bytes (sha256 of the decoded pixels); for bytes that do not decode,
    which the builder rejects before it could check any id, the sha256 of the bytes."""
    from fracdata.images import ImageError
    from fracdata.images import image_id as pixels

    try:
        return pixels(data)
    except ImageError:
        return sha(data)


def put(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return image_id(data)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def mrec(image_id: str, image: str, doi: str | None = None, licence: str = "CC BY 4.0") -> dict:
    return {"id": image_id, "image": image, "source": {"doi": doi, "licence": licence} if doi else {}}


def lrec(image_id: str, features, kind: str = "gpt") -> dict:
    return {"id": image_id, "features": list(features), "labeler": {"kind": kind}}


def read_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path: for byte-identical comparisons."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

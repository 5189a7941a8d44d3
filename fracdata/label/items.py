"""Manifest (or gold file) -> the images to label (each with its cache key), and the rejects with reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import GoldRecord, ManifestRecord, Reject, read_jsonl, sha256_file


@dataclass
class Item:
    id: str
    line: int
    path: Path
    caption: str
    excerpts: list[str]
    key: str


def read_items(manifest: Path, prompter, check_hash: bool = True, gold: bool = False) -> tuple[list[Item], list[Reject]]:
    """One item per distinct image id, in manifest order.

    `gold`: the file holds GoldRecords (the benchmark): the images are labelled with no caption
    or excerpts (a gold record has none), and its features never reach the request.

    Rejected: malformed lines, missing or unreadable images, an image whose bytes do not hash
    to its id (the id is the record's identity end to end), and repeats of an id (the cache
    key holds the image, not its caption, so a repeat would only be asked once anyway).
    """
    if not manifest.is_file():
        raise FracdataError(f"{manifest}: {'gold file' if gold else 'manifest'} not found")
    items, rejects, seen = [], [], set()
    for lineno, rec in read_jsonl(manifest, GoldRecord if gold else ManifestRecord, "label"):
        if isinstance(rec, Reject):
            rejects.append(rec)
            continue
        path = (manifest.parent / rec.image).resolve()

        def reject(reason, detail):
            rejects.append(Reject(stage="label", file=str(manifest), line=lineno, id=rec.id, reason=reason,
                                  detail=detail))

        if rec.id in seen:
            reject("duplicate_id", f"image id already on an earlier line ({rec.image})")
            continue
        if not path.is_file():
            reject("image_missing", f"{rec.image}: no such file")
            continue
        if check_hash and sha256_file(path) != rec.id:
            reject("id_mismatch", f"{rec.image}: sha256 of the file is not the record id")
            continue
        seen.add(rec.id)
        caption, excerpts = ("", []) if gold else (rec.caption, list(rec.excerpts))
        items.append(Item(rec.id, lineno, path, caption, excerpts, prompter.cache_key(rec.id)))
    return items, rejects


def count_reasons(records) -> str:
    c = Counter(r.reason for r in records)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"

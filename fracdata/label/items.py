"""Manifest (or gold file) -> the images to label (each with its cache key), and the rejects with reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.images import ImageError, image_id
from fracdata.records import GoldRecord, ManifestRecord, Reject, read_jsonl, sha256_bytes


@dataclass(frozen=True)
class LabelJob:
    """One image to label: its manifest record's text and the cache key its answer is stored under."""

    id: str
    line: int
    path: Path
    caption: str
    excerpts: list[str]
    key: str
    source: str = ""  # sha256 of the source text the request holds (the cache's freshness check)


def read_items(manifest: Path, prompter, check_hash: bool = True, gold: bool = False) -> tuple[list[LabelJob], list[Reject]]:
    """One job per distinct image id, in manifest order.

    `gold`: the file holds GoldRecords (the benchmark): a record's caption and excerpts, when it
    carries them, go into the request as a manifest's do (the training labels' inputs), and its
    features never reach the request.

    Rejected: malformed lines, missing or unreadable images, an image whose pixels do not hash
    to its id (the id is the record's identity end to end; one decode per image, ~10 ms for a
    1024 px PNG, so 13,000 images cost ~2 min once per run), and repeats of an id (the cache
    key holds the image, not its caption, so a repeat would only be asked once anyway).
    """
    if not manifest.is_file():
        raise FracdataError(f"{manifest}: {'gold file' if gold else 'manifest'} not found (or not a file, or a symlink loop)")
    items, rejects, seen = [], [], set()
    for lineno, rec in read_jsonl(manifest, GoldRecord if gold else ManifestRecord, "label"):
        if isinstance(rec, Reject):
            rejects.append(rec)
            continue
        def reject(reason, detail):
            rejects.append(Reject(stage="label", file=str(manifest), line=lineno, id=rec.id, reason=reason,
                                  detail=detail))

        if rec.id in seen:
            reject("duplicate_id", f"image id already on an earlier line ({rec.image})")
            continue
        try:  # a NUL in the path is a ValueError, a symlink loop a RuntimeError (OSError from 3.13)
            path = (manifest.parent / rec.image).resolve()
            found = path.is_file()
        except (OSError, ValueError, RuntimeError) as e:
            reject("missing_image", f"{rec.image!r}: not a usable path ({e})")
            continue
        if not found:
            reject("missing_image", f"{rec.image}: no such file")
            continue
        if check_hash:
            try:
                actual = image_id(path)
            except ImageError:  # no pixels, no id to check: building its request fails as
                actual = rec.id  # unreadable_image, a failure asked again next run
            if actual != rec.id:
                reject("id_mismatch", f"{rec.image}: its pixels hash to {actual}, not the record id")
                continue
        seen.add(rec.id)
        caption, excerpts = rec.caption or "", list(rec.excerpts or [])
        source = sha256_bytes(prompter.source_text(caption, excerpts).encode())
        items.append(LabelJob(rec.id, lineno, path, caption, excerpts, prompter.cache_key(rec.id), source))
    return items, rejects


def count_reasons(records) -> str:
    c = Counter(r.reason for r in records)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"

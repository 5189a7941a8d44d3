"""Merge shard outputs (`fracdata mine merge A B ... --out DIR`): concatenate and dedup by id.

Each input is a shard's output folder (manifest.jsonl, images/, rejects.jsonl,
evidence.jsonl) or a manifest file. The first record of an id wins, in the order the
inputs are given; later ones are `duplicate_image` rejects. Every image is checked against
its id (sha256 of the decoded pixels, `fracdata.images.image_id`) before it is linked into DIR/images/ (a hard link where the
file system allows, else a copy), so a merged manifest never points at a wrong file.
The shards' own rejects are carried over, so DIR/rejects.jsonl covers the whole corpus.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.images import ImageError, image_id
from fracdata.records import ManifestRecord, Reject, dump_jsonl, read_jsonl
from fracdata.untrusted import loads


def _inputs(paths: list[str]) -> list[Path]:
    manifests = []
    for s in paths:
        p = Path(s)
        m = p / "manifest.jsonl" if p.is_dir() else p
        if not m.is_file():
            raise FracdataError(f"{s}: no manifest (expected a shard folder with manifest.jsonl, or a manifest file)")
        manifests.append(m)
    return manifests


def _evidence(path: Path) -> dict[str, dict]:
    """A shard's evidence.jsonl by id; a malformed line is an error naming file:line (the shard is damaged)."""
    rows = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                row = loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise FracdataError(f"{path}:{lineno}: malformed evidence line: {e}") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise FracdataError(f"{path}:{lineno}: malformed evidence line: not a JSON object with a string \"id\"")
            rows[row["id"]] = row
    return rows


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(src, dst)  # another file system: copy


def merge(paths: list[str], out: Path) -> dict:
    manifests = _inputs(paths)
    if any(m.parent.resolve() == out.resolve() for m in manifests):
        raise FracdataError(f"--out {out}: is also an input; merge into a new folder")
    out_images = out / "images"
    out_images.mkdir(parents=True, exist_ok=True)
    records, rejects, evidence, first = [], [], [], {}
    read, carried, reasons = 0, 0, Counter()
    for m in manifests:
        ev = {}
        if (m.parent / "evidence.jsonl").is_file() and m.name == "manifest.jsonl":
            ev = _evidence(m.parent / "evidence.jsonl")
        if (m.parent / "rejects.jsonl").is_file() and m.name == "manifest.jsonl":
            for _, r in read_jsonl(m.parent / "rejects.jsonl", Reject, "mine"):
                rejects.append(r)  # a malformed reject line becomes a reject about that line
                carried += 1
        for lineno, rec in read_jsonl(m, ManifestRecord, "mine-merge"):
            read += 1
            if isinstance(rec, Reject):
                rejects.append(rec)
                reasons[rec.reason] += 1
                continue
            img = m.parent / rec.image
            reason = detail = None
            if rec.id in first:
                reason, detail = "duplicate_image", f"same id as {first[rec.id]}"
            elif not img.is_file():
                reason, detail = "missing_image", f"{rec.image} not found next to {m}"
            else:
                try:
                    if image_id(img) != rec.id:
                        reason, detail = "id_mismatch", f"the pixels of {rec.image} do not hash to the record's id"
                except ImageError as e:
                    reason, detail = "unreadable_image", f"{rec.image}: {e}"
            if reason:
                rejects.append(Reject(stage="mine-merge", file=str(m), line=lineno, id=rec.id, reason=reason, detail=detail))
                reasons[reason] += 1
                continue
            first[rec.id] = f"{m} line {lineno}"
            _link(img, out_images / f"{rec.id}.png")
            records.append(rec.model_copy(update={"image": f"images/{rec.id}.png"}))
            if rec.id in ev:
                evidence.append(ev[rec.id])
    keep = {f"{r.id}.png" for r in records}
    stale = [p for p in out_images.glob("*.png") if p.name not in keep]
    for p in stale:  # left by an earlier merge into this folder: no record points at them
        p.unlink()
    return {
        "inputs": manifests, "stale": len(stale), "read": read, "kept": len(records), "rejected": sum(reasons.values()),
        "reasons": reasons, "carried": carried,
        "manifest": dump_jsonl(records, out / "manifest.jsonl"),
        "rejects": dump_jsonl(rejects, out / "rejects.jsonl"),
        "evidence": dump_jsonl(evidence, out / "evidence.jsonl"),
    }

"""The probe's inputs: manifest images joined to their labels by id, every line counted.

Kept: a manifest image with a label, in the manifest's folder (the builder's path rule,
fracdata.files.resolve_image). Rejected, with the reasons of fracdata.records.REASONS:
malformed or invalid lines, a repeated id, an image path that is missing or leaves the folder, an
image with no label (`no_label`), a label with no image (`no_image`), a label naming a feature the
taxonomy does not know (`unknown_feature`), a label calling the image "not a fracture surface"
(`not_fractograph`, as the builder rejects it) and a second label of an id (`duplicate_label`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import LabelRecord, ManifestRecord, Reject, read_jsonl

STAGE = "probe"
NEGATIVE = "not a fracture surface"


@dataclass(frozen=True)
class Item:
    id: str
    path: Path
    features: tuple[str, ...]
    group: str  # the paper (and parent) group the training split uses


def read_inputs(manifest: Path, labels: Path, taxonomy) -> tuple[list[Item], list[Reject], dict[str, int]]:
    """(items in manifest order, rejects, lines read per file)."""
    from fracdata.dataset.inputs import parent_of
    from fracdata.dataset.split import groups
    from fracdata.files import resolve_image
    from fracdata.records import group_key

    for p, what in ((manifest, "manifest"), (labels, "labels file")):
        if not p.is_file():
            raise FracdataError(f"{p}: {what} not found")
    rejects: list[Reject] = []
    read = {"manifest": 0, "labels": 0}

    def reject(file, reason, detail, line=None, id=None):
        rejects.append(Reject(stage=STAGE, file=str(file), line=line, id=id, reason=reason, detail=detail))

    given: dict[str, tuple[tuple[str, ...], int]] = {}
    for lineno, rec in read_jsonl(labels, LabelRecord, STAGE):
        read["labels"] += 1
        if isinstance(rec, Reject):
            rejects.append(rec)
        elif rec.id in given:
            reject(labels, "duplicate_label", f"a label of this id is on line {given[rec.id][1]} (the first wins)",
                   lineno, rec.id)
        else:
            ids, unknown = taxonomy.normalize_all(rec.features)
            if unknown:
                reject(labels, "unknown_feature", f"unknown feature {unknown[0]!r} (taxonomy v{taxonomy.version})",
                       lineno, rec.id)
                given[rec.id] = (None, lineno)  # type: ignore[assignment]  # counted: not a second reject
            elif (rec.image_type or "").strip().lower() == NEGATIVE:
                reject(labels, "not_fractograph", f"image_type '{NEGATIVE}'", lineno, rec.id)
                given[rec.id] = (None, lineno)  # type: ignore[assignment]
            else:
                given[rec.id] = (tuple(ids), lineno)
    root = Path(os.path.abspath(manifest.parent))
    items, keys, seen = [], {}, {}
    for lineno, rec in read_jsonl(manifest, ManifestRecord, STAGE):
        read["manifest"] += 1
        if isinstance(rec, Reject):
            rejects.append(rec)
            continue
        if rec.id in seen:
            reject(manifest, "duplicate_id", f"id already named at line {seen[rec.id]}", lineno, rec.id)
            continue
        seen[rec.id] = lineno
        if rec.id not in given:
            reject(manifest, "no_label", f"no label in {labels} has this id", lineno, rec.id)
            continue
        features, _ = given[rec.id]
        if features is None:  # its label was rejected above
            continue
        path, reason, detail = resolve_image(root, rec.image)
        if path is None:
            reject(manifest, reason, detail, lineno, rec.id)
            continue
        keys[rec.id] = (group_key(rec.source, f"manifest:{rec.id}"), parent_of(rec.source))
        items.append((rec.id, path, features))
    for i, (features, lineno) in given.items():
        if i not in seen and features is not None:
            reject(labels, "no_image", f"no line of {manifest} has this id", lineno, i)
    group = groups(keys)
    return [Item(i, p, f, group[i]) for i, p, f in items], rejects, read

"""Read the builder's inputs into items and labels, counting every line read.

Four streams, each with kept + rejected = read:
  mined    lines of --manifest (one image each)
  manual   lines of DIR/manifest.jsonl, or without one the files in DIR (matched to labels by
           the sha256 of their bytes)
  labels   lines of every --labels file and DIR/labels.jsonl; kept = attached to an image
  gold     lines of every --gold file (kept = checked against the training data)
Image paths are relative to the file that names them and may not leave its folder, neither by
`..`/absolute paths (`path_traversal`) nor through a symlink (`symlink_outside_tree`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fracdata.records import GoldRecord, LabelRecord, ManifestRecord, Reject, Source, read_jsonl, sha256_file

STAGE = "build"
STREAMS = ("mined", "manual", "labels", "gold")
MANUAL_META = ("labels.jsonl", "manifest.jsonl")  # the files in --manual DIR that are not images


@dataclass
class Item:
    id: str
    path: Path  # the image file
    origin: str  # mined | manual | gold
    file: str  # the file (and line) that named it, for rejects
    line: int | None = None
    source: Source | None = None
    features: list[str] = field(default_factory=list)  # label (taxonomy ids) once attached
    label_kind: str | None = None
    label: Label | None = None
    png: str | None = None  # sha256 of the normalised PNG, once decoded
    rotated: list[str] = field(default_factory=list)  # sha256 of each rotated copy (--rotations order)
    hashes: list[int] = field(default_factory=list)  # 8 dihedral phashes
    size: tuple[int, int] | None = None


@dataclass
class Label:
    features: list[str]  # taxonomy ids, taxonomy order
    kind: str
    file: str
    line: int


class Ledger:
    """What was read, per stream, and every reject with its reason."""

    def __init__(self):
        self.read: Counter = Counter()
        self.rejects: list[tuple[str, Reject]] = []
        self.unknown_names: Counter = Counter()  # unknown feature names, for the summary

    def reject(self, stream: str, file, reason: str, *, line=None, id=None, detail=None) -> None:
        self.rejects.append((stream, Reject(stage=STAGE, file=str(file), line=line, id=id, reason=reason, detail=detail)))

    def add(self, stream: str, rej: Reject) -> None:
        self.rejects.append((stream, rej))

    def rejected(self, stream: str) -> Counter:
        return Counter(r.reason for s, r in self.rejects if s == stream)


def resolve_image(root: Path, rel: str) -> tuple[Path | None, str, str]:
    """(path, "", "") or (None, reason, detail) for an image path relative to `root`."""
    if os.path.isabs(rel) or not os.path.normpath(os.path.join(root, rel)).startswith(str(root) + os.sep):
        return None, "path_traversal", f"image path {rel!r} leaves {root}"
    path = root / rel
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        return None, "symlink_outside_tree", f"{rel!r} is a symlink to {real}, outside {root}"
    if not real.is_file():
        return None, "missing_image", f"{path} does not exist" if not real.exists() else f"{path} is not a file"
    return path, "", ""


def read_manifest(path: Path, stream: str, ledger: Ledger, seen: dict[str, str]) -> list[Item]:
    """Manifest lines -> items; `seen` maps ids already named (any stream) to 'file:line'."""
    root = Path(os.path.abspath(path.parent))
    items = []
    for lineno, rec in read_jsonl(path, ManifestRecord, STAGE):
        ledger.read[stream] += 1
        if isinstance(rec, Reject):
            ledger.add(stream, rec)
            continue
        if rec.id in seen:
            ledger.reject(stream, path, "duplicate_id", line=lineno, id=rec.id, detail=f"id already named at {seen[rec.id]}")
            continue
        seen[rec.id] = f"{path}:{lineno}"
        image, reason, detail = resolve_image(root, rec.image)
        if image is None:
            ledger.reject(stream, path, reason, line=lineno, id=rec.id, detail=detail)
            continue
        items.append(Item(rec.id, image, stream, str(path), lineno, rec.source))
    return items


def read_manual_files(folder: Path, ledger: Ledger, seen: dict[str, str]) -> list[Item]:
    """Every file under DIR except labels.jsonl/manifest.jsonl is a manual image, id = sha256."""
    root = Path(os.path.abspath(folder))
    items = []
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into symlinked folders:
        dirnames.sort()
        for name in [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:  # so count them here
            link = Path(dirpath) / name
            ledger.read["manual"] += 1
            inside = link.resolve().is_relative_to(root.resolve())
            ledger.reject("manual", link, "symlinked_folder" if inside else "symlink_outside_tree",
                          detail=f"folder symlink to {link.resolve()} is not followed")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.parent == root and name in MANUAL_META:
                continue
            ledger.read["manual"] += 1
            rel = str(path.relative_to(root))
            if not path.resolve().is_relative_to(root.resolve()):
                ledger.reject("manual", path, "symlink_outside_tree", detail=f"{rel!r} is a symlink to {path.resolve()}, outside {root}")
                continue
            if not path.resolve().is_file():
                ledger.reject("manual", path, "missing_image", detail=f"{path} is a broken symlink")
                continue
            sha = sha256_file(path)
            if sha in seen:
                ledger.reject("manual", path, "duplicate_id", id=sha, detail=f"same bytes as {seen[sha]}")
                continue
            seen[sha] = str(path)
            items.append(Item(sha, path, "manual", str(path)))
    return items


def read_gold(paths: list[Path], ledger: Ledger) -> list[Item]:
    items, seen = [], {}
    for path in paths:
        root = Path(os.path.abspath(path.parent))
        for lineno, rec in read_jsonl(path, GoldRecord, STAGE):
            ledger.read["gold"] += 1
            if isinstance(rec, Reject):
                ledger.add("gold", rec)
                continue
            if rec.id in seen:
                ledger.reject("gold", path, "duplicate_id", line=lineno, id=rec.id, detail=f"id already named at {seen[rec.id]}")
                continue
            seen[rec.id] = f"{path}:{lineno}"
            image, reason, detail = resolve_image(root, rec.image)
            if image is None:
                ledger.reject("gold", path, reason, line=lineno, id=rec.id, detail=detail)
                continue
            items.append(Item(rec.id, image, "gold", str(path), lineno, features=list(rec.features)))
    return items


def read_labels(files: list[tuple[Path, bool]], taxonomy, ledger: Ledger) -> dict[str, Label]:
    """Label files ((path, must_be_human)) -> {id: winning label}, every other line a reject.

    Names are normalised to taxonomy ids; one unknown name rejects the whole label (training
    on the rest would teach "absent" for a feature the labeller saw). A human label overrides
    GPT/synthetic labels for the same id; within one kind the first line wins.
    """
    candidates: dict[str, list[Label]] = {}
    for path, must_be_human in files:
        for lineno, rec in read_jsonl(path, LabelRecord, STAGE):
            ledger.read["labels"] += 1
            if isinstance(rec, Reject):
                ledger.add("labels", rec)
                continue
            if must_be_human and rec.labeler.kind != "human":
                ledger.reject("labels", path, "manual_label_not_human", line=lineno, id=rec.id,
                              detail=f"labeler.kind is {rec.labeler.kind!r}; the manual collection is human-labelled")
                continue
            ids, unknown = taxonomy.normalize_all(rec.features)
            if unknown:
                ledger.unknown_names.update(unknown)
                names = ", ".join(repr(u) for u in unknown)
                ledger.reject("labels", path, "unknown_feature", line=lineno, id=rec.id,
                              detail=f"unknown feature {names} (not an id, name or synonym in taxonomy v{taxonomy.version})")
                continue
            candidates.setdefault(rec.id, []).append(Label(ids, rec.labeler.kind, str(path), lineno))
    chosen: dict[str, Label] = {}
    for label_id, labels in candidates.items():
        best = next((lab for lab in labels if lab.kind == "human"), labels[0])
        chosen[label_id] = best
        for lab in labels:
            if lab is best:
                continue
            if best.kind == "human" and lab.kind != "human":
                reason = "overridden_by_human"
            else:
                reason = "duplicate_label"
            same = "same features" if lab.features == best.features else f"features {lab.features} vs {best.features}"
            ledger.reject("labels", lab.file, reason, line=lab.line, id=label_id,
                          detail=f"{best.kind} label at {best.file}:{best.line} wins ({same})")
    return chosen

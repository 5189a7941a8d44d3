"""Read the builder's inputs into frozen records keyed by id, counting every line read.

Four streams, each with kept + rejected = read:
  mined    lines of --manifest (one image each)                              -> Candidate
  manual   lines of DIR/manifest.jsonl, or without one the files in DIR (their id computed
           from their pixels, then matched to labels)                         -> Candidate
  labels   lines of every --labels file and DIR/labels.jsonl; kept = attached to an image
                                                                              -> Label
  gold     lines of every --gold file (kept = checked against the training data; a line that
           cannot be read fails the build: the leak guard cannot vouch for it) -> GoldImage
Image paths are relative to the file that names them and may not leave its folder, neither by
`..`/absolute paths (`path_traversal`) nor through a symlink (`symlink_outside_tree`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import real_path, resolve_image
from fracdata.records import GoldRecord, LabelRecord, ManifestRecord, Reject, Source, read_jsonl

STAGE = "build"
STREAMS = ("mined", "manual", "labels", "gold")
MANUAL_META = ("labels.jsonl", "manifest.jsonl")  # the files in --manual DIR that are not images
NEGATIVE = "not a fracture surface"  # the labeller's image_type for a micrograph, plot, part, ...


def parent_of(source: Source | None) -> str | None:
    """The raw image or field an image was cut from (`source.parent`), or None."""
    p = source.parent.strip() if source and source.parent else ""
    return p or None


@dataclass(frozen=True)
class Candidate:
    """A training image as its input names it: a manifest line or a file of a manual folder."""

    id: str
    path: Path  # the image file
    origin: str  # mined | manual
    file: str  # the file (and line) that named it, for rejects
    line: int | None = None
    source: Source | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def parent(self) -> str | None:
        return parent_of(self.source)


@dataclass(frozen=True)
class GoldImage:
    id: str
    path: Path
    file: str
    line: int
    source: Source | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def parent(self) -> str | None:
        return parent_of(self.source)


@dataclass(frozen=True)
class Label:
    features: tuple[str, ...]  # taxonomy ids, taxonomy order
    kind: str
    file: str
    line: int
    negative: bool = False  # image_type "not a fracture surface"


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

    def write(self, path: Path) -> str:
        """rejects.jsonl, sorted by file, line, id, reason; returns its sha256."""
        from fracdata.records import dump_jsonl, sha256_file

        dump_jsonl(sorted((r for _, r in self.rejects), key=lambda r: (r.file, r.line or 0, r.id or "", r.reason)), path)
        return sha256_file(path)


def read_manifest(path: Path, stream: str, ledger: Ledger, seen: dict[str, str]) -> dict[str, Candidate]:
    """Manifest lines -> {id: Candidate}; `seen` maps ids already named (any stream) to 'file:line'."""
    root = Path(os.path.abspath(path.parent))
    items = {}
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
        items[rec.id] = Candidate(rec.id, image, stream, str(path), lineno, rec.source)
    return items


def walk_manual(root: Path, meta: bool = False) -> tuple[list[Path], list[Path]]:
    """(symlinked folders, files) of a manual folder as the builder reads it: os.walk, which does
    not descend into symlinked folders, sorted; labels.jsonl/manifest.jsonl at the top are left
    out unless `meta`. With `meta` (the input fingerprint) only files the stage can read are listed."""
    links, files = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        links += [Path(dirpath) / d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.parent == root and name in MANUAL_META and not meta:
                continue
            if meta and not usable(root, path):
                continue
            files.append(path)
    return links, files


def usable(root: Path, path: Path) -> bool:
    """A regular file inside root (after symlinks): what read_manual_files decodes."""
    real = real_path(path)
    return real is not None and real.is_relative_to(root.resolve()) and real.is_file()


def read_manual_files(folder: Path, ledger: Ledger, seen: dict[str, str], identify) -> dict[str, Candidate]:
    """Every file under DIR except labels.jsonl/manifest.jsonl is a manual image -> {id: Candidate}.

    identify([paths]) -> {str(path): Decoded | Failed} computes the ids (pixel hashes) in the
    builder's pool; a file that is no image is rejected with the decoder's reason, one whose
    pixels repeat an earlier file's is `duplicate_image`, an id a manifest named `duplicate_id`.
    """
    root = Path(os.path.abspath(folder))
    links, found = walk_manual(root)
    for link in links:  # os.walk does not descend into symlinked folders: so count them here
        ledger.read["manual"] += 1
        real = real_path(link)
        inside = real is not None and real.is_relative_to(root.resolve())
        ledger.reject("manual", link, "symlinked_folder" if inside else "symlink_outside_tree",
                      detail=f"folder symlink to {real} is not followed")
    files = []
    for path in found:
        ledger.read["manual"] += 1
        real, rel = real_path(path), str(path.relative_to(root))
        if real is None:
            ledger.reject("manual", path, "missing_image", detail=f"{path} cannot be resolved (a symlink loop)")
        elif not real.is_relative_to(root.resolve()):
            ledger.reject("manual", path, "symlink_outside_tree", detail=f"{rel!r} is a symlink to {real}, outside {root}")
        elif not real.exists():
            ledger.reject("manual", path, "missing_image", detail=f"{path} is a broken symlink")
        elif not real.is_file():
            ledger.reject("manual", path, "missing_image", detail=f"{path} is not a regular file (a FIFO, socket or device)")
        else:
            files.append(path)
    items, by_pixels = {}, {}
    results = identify(files)
    for path in files:
        res = results[str(path)]
        if not hasattr(res, "id"):
            ledger.reject("manual", path, res.reason, detail=f"{path}: {res.detail}")
        elif res.id in by_pixels:
            ledger.reject("manual", path, "duplicate_image", id=res.id,
                          detail=f"{path}: same pixels after normalisation as {by_pixels[res.id]}")
        elif res.id in seen:
            ledger.reject("manual", path, "duplicate_id", id=res.id, detail=f"id already named at {seen[res.id]}")
        else:
            seen[res.id] = by_pixels[res.id] = str(path)
            items[res.id] = Candidate(res.id, path, "manual", str(path))
    return items


def read_gold(paths: list[Path], ledger: Ledger) -> dict[str, GoldImage]:
    """Gold lines -> {id: GoldImage}; a repeated id is a reject, any other bad line an error.

    The error lists every line that cannot be read (malformed, schema, path, missing image) in
    one line: an image the guard did not see could be in training.
    """
    items, seen, problems = {}, {}, []
    for path in paths:
        root = Path(os.path.abspath(path.parent))
        for lineno, rec in read_jsonl(path, GoldRecord, STAGE):
            ledger.read["gold"] += 1
            if isinstance(rec, Reject):
                problems.append(f"{path}:{lineno}: {rec.reason} ({rec.detail})")
                continue
            if rec.id in seen:
                ledger.reject("gold", path, "duplicate_id", line=lineno, id=rec.id, detail=f"id already named at {seen[rec.id]}")
                continue
            seen[rec.id] = f"{path}:{lineno}"
            image, reason, detail = resolve_image(root, rec.image)
            if image is None:
                problems.append(f"{path}:{lineno}: {reason} ({detail})")
                continue
            items[rec.id] = GoldImage(rec.id, image, str(path), lineno, rec.source)
    if problems:
        raise gold_unreadable(problems)
    return items


def gold_unreadable(problems: list[str]) -> FracdataError:
    return FracdataError(f"gold: {len(problems)} record(s) cannot be read, so the leak guard cannot check them: "
                         + "; ".join(problems) + ". Fix or remove them")


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
            negative = (rec.image_type or "").strip().lower() == NEGATIVE
            candidates.setdefault(rec.id, []).append(Label(tuple(ids), rec.labeler.kind, str(path), lineno, negative))
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
            same = "same features" if lab.features == best.features else f"features {list(lab.features)} vs {list(best.features)}"
            ledger.reject("labels", lab.file, reason, line=lab.line, id=label_id,
                          detail=f"{best.kind} label at {best.file}:{best.line} wins ({same})")
    return chosen

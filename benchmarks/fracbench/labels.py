"""Model entries of kind `labels`: a LabelRecord JSONL scored as if it were a model.

This is how the teacher gets its row: `fracdata label --gold G` (GPT-5.2 over the gold images)
or `fracdata synth`'s simulated teacher write a labels file; an entry

    name: teacher
    kind: labels
    path: data/labels/gold-gpt.jsonl

turns it into predictions rows through the same parse, metrics and report as a checkpoint.
Which inputs the labeller saw (`labeler.inputs`: image, caption, excerpts, as `fracdata label`
records them) is counted into the entry's identity and shown under the report's headline.
A gold id the file lacks is a `failed` row (the teacher gave no answer there), so it costs
recall and, in the strict scores, precision; ids the file has beyond the gold set are ignored
(a teacher labels file may cover the training images too). No inference, no cache.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from fracdata.errors import FracdataError


def read_labels(path: Path) -> dict[str, tuple[list[str], str | None, str]]:
    """{id: (features as written, labeler model, inputs)}; a malformed or repeated line is an error.
    inputs: "image + caption + excerpts" as the label records them, or "not recorded"."""
    from fracdata.records import LabelRecord, Reject, read_jsonl

    if not path.is_file():
        raise FracdataError(f"{path}: labels file not found (write it with `fracdata label --gold GOLD --out {path}`)")
    out: dict[str, tuple[list[str], str | None, str]] = {}
    first: dict[str, int] = {}
    for lineno, rec in read_jsonl(path, LabelRecord, "bench"):
        if isinstance(rec, Reject):
            raise FracdataError(f"{path}:{lineno}: {rec.reason} ({rec.detail})")
        if rec.id in out:
            raise FracdataError(f"{path}:{lineno}: second label for id {rec.id[:12]}… (first on line {first[rec.id]})")
        first[rec.id] = lineno
        inputs = " + ".join(rec.labeler.inputs) if rec.labeler.inputs else "not recorded"
        out[rec.id] = (list(rec.features), rec.labeler.model, inputs)
    return out


def infer_labels(task, task_path, thash, tax, entry, items, gold, out_dir, limit=None, control=None, log=print) -> dict:
    """Write DIR/predictions/<name>.jsonl + meta for a `labels` entry, like `infer_model` does."""
    from fracbench import __version__
    from fracbench.data import STATUSES, write_predictions
    from fracdata.records import sha256_file

    if control is not None:
        raise FracdataError(f"model {entry.name}: a `labels` entry reads no image, so it has no {control}-image control")
    path = Path(entry.path)
    labels = read_labels(path)
    rows = []
    for it in items:
        row = {"id": it.id, "model": entry.name, "latency_s": None, "usage": None, "cached": False}
        if it.id not in labels:
            row.update(raw="", labels=[], unknown=[], status="failed", error=f"no label for this id in {path}")
        else:
            names = labels[it.id][0]
            ids, unknown = tax.normalize_all(names)
            status = "ok" if ids else ("unparsed" if unknown else "none")
            row.update(raw=", ".join(names) if names else "none", labels=ids, unknown=unknown, status=status)
        rows.append(row)
    statuses = Counter(r["status"] for r in rows)
    models = Counter(labels[it.id][1] or "unknown" for it in items if it.id in labels)
    inputs = Counter(labels[it.id][2] for it in items if it.id in labels)
    identity = {"kind": "labels", "path": str(path), "sha256": sha256_file(path), "labelers": dict(models),
                "inputs": dict(inputs)}
    meta = {"model": entry.name, "entry": entry.name, "kind": "labels", "control": None, "identity": identity,
            "decoding": {}, "prompt_variant": None, "prompt_sha256": None,
            "task": {"name": task.name, "version": task.version, "file": str(task_path), "hash": thash},
            "gold": {"path": str(gold), "sha256": sha256_file(gold)}, "limit": limit, "n": len(rows),
            "cached": 0, "computed": 0, "statuses": {s: statuses.get(s, 0) for s in STATUSES},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "fracbench": __version__}
    out = write_predictions(out_dir, entry.name, rows, meta)
    counts = ", ".join(f"{s} {statuses.get(s, 0)}" for s in STATUSES)
    log(f"wrote {out}: {len(rows)} rows from labels file {path} ({len(labels)} labels, "
        f"{statuses.get('failed', 0)} gold ids without one; {counts})")
    return meta

"""Gold items in, prediction rows out: the files every fracbench command shares.

Gold: fracdata's GoldRecord JSONL; `image` is relative to the gold file; `features` and the
optional `annotators` {name: [features]} are normalised to taxonomy ids here; an optional
`source` becomes the item's paper (the training split's group key: normalised DOI first) and
parent (`source.parent`, the micrograph a tile was cut from): together the units of the
clustered bootstrap (score.resampling). A bad gold file is
an error (file, line, reason), never a silently smaller benchmark.
Predictions: DIR/predictions/<model>.jsonl, one row per gold id, plus <model>.meta.json (task
hash, gold, limit, model identity, decoding) so `score` can check that all models saw the same
items under the same task. Both are written atomically, rows first: a killed run leaves the old
pair or the new rows beside the old meta (which `score` refuses as a mismatch), never a part.
Reading them back, anything that is not what `infer` writes is one error naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fracdata.dataset.inputs import parent_of  # light: the tile's parent as the builder reads it
from fracdata.records import group_key  # the paper identity the training split uses
from fracdata.errors import FracdataError
from fracdata.records import GoldRecord, Reject, json_lines, read_jsonl
from fracdata.untrusted import loads, text_problem

STATUSES = ("ok", "none", "empty", "unparsed", "failed")  # see docs/bench.md


@dataclass(frozen=True)
class GoldItem:
    id: str
    image: Path  # resolved against the gold file's folder
    features: tuple[str, ...]  # taxonomy ids, taxonomy order
    annotators: dict[str, tuple[str, ...]] | None = None
    paper: str | None = None  # the source paper's group key (fracdata.records.group_key), if known
    parent: str | None = None  # source.parent: the micrograph this tile was cut from, if known


def load_gold(path: str | Path, taxonomy, limit: int | None = None, check_images: bool = True) -> list[GoldItem]:
    """All gold items in file order (the first `limit` when given)."""
    path = Path(path)
    if not path.is_file():
        raise FracdataError(f"{path}: gold file not found (make synth writes data/synthetic/gold.jsonl; or pass --gold)")
    items, seen = [], {}
    for lineno, rec in read_jsonl(path, GoldRecord, "bench"):
        where = f"{path}:{lineno}"
        if isinstance(rec, Reject):
            raise FracdataError(f"{where}: {rec.reason} ({rec.detail})")
        if rec.id in seen:
            raise FracdataError(f"{where}: duplicate id {rec.id[:12]}… (first on line {seen[rec.id]})")
        seen[rec.id] = lineno
        ids = _normalize(rec.features, taxonomy, where)
        ann = {name: tuple(_normalize(f, taxonomy, f"{where}: annotator {name!r}"))
               for name, f in (rec.annotators or {}).items()} or None
        try:  # a symlink loop is a RuntimeError (OSError from 3.13), a NUL in the path a ValueError
            image = (path.parent / rec.image).resolve()
        except (OSError, ValueError, RuntimeError) as e:
            raise FracdataError(f"{where}: image {rec.image!r} is not a usable path ({e})") from None
        if check_images:
            if not image.is_file():
                raise FracdataError(f"{where}: image {rec.image} not found (paths are relative to the gold file)")
            from fracdata.images import ImageError, image_id

            try:
                digest = image_id(image)  # sha256 of the decoded pixels, as every stage computes ids
            except ImageError as e:
                raise FracdataError(f"{where}: image {rec.image} cannot be decoded ({e})") from None
            if digest != rec.id:
                raise FracdataError(f"{where}: image {rec.image} has pixel id {digest[:12]}… but id {rec.id[:12]}…")
        paper = group_key(rec.source, None) if rec.source is not None else None
        items.append(GoldItem(rec.id, image, tuple(ids), ann, paper, parent_of(rec.source)))
    if not items:
        raise FracdataError(f"{path}: no gold records")
    if limit is not None:
        if limit < 1:
            raise FracdataError(f"--limit {limit}: must be at least 1")
        items = items[:limit]
    return items


def _normalize(names, taxonomy, where: str) -> list[str]:
    ids, unknown = taxonomy.normalize_all(names)
    if unknown:
        raise FracdataError(f"{where}: unknown feature {unknown[0]!r} (not in taxonomy v{taxonomy.version}; see `fracdata taxonomy`)")
    return ids


def pred_paths(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    d = Path(out_dir) / "predictions"
    return d / f"{name}.jsonl", d / f"{name}.meta.json"


def write_predictions(out_dir, name: str, rows: list[dict], meta: dict) -> Path:
    from fracdata.records import dump_jsonl

    from fracdata.files import atomic_write_bytes

    rows_path, meta_path = pred_paths(out_dir, name)
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    dump_jsonl(rows, rows_path)
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    return rows_path


def read_json(path: Path, what: str) -> dict:
    """The JSON object in `path`, else one error naming it (unreadable, not UTF-8, not JSON, too
    deep, not an object, or text that could not be written again)."""
    try:
        obj = loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise FracdataError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise FracdataError(f"{path}: the {what} is not UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise FracdataError(f"{path}: the {what} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise FracdataError(f"{path}: the {what} is a JSON {type(obj).__name__}, not an object")
    problem = text_problem(obj)
    if problem is not None:
        raise FracdataError(f"{path}: {problem}")
    return obj


META_KEYS = {"task": dict, "gold": dict, "limit": (int, type(None)), "kind": str, "control": (str, type(None)),
             "identity": dict, "decoding": dict, "prompt_variant": str, "prompt_sha256": str, "created": str}


def read_meta(path: Path) -> dict:
    """A <model>.meta.json as `infer` writes it (the keys `score` reads, of the right types)."""
    meta = read_json(path, "predictions meta file")
    # A `kind: labels` or `probe` row (fracbench/labels.py, probe.py) sends no prompt: its prompt keys are null.
    nullable = {"prompt_variant", "prompt_sha256"} if meta.get("kind") in ("labels", "probe") else set()
    bad = [k for k, t in META_KEYS.items() if not (k in nullable and meta.get(k) is None)
           and (not isinstance(meta.get(k), t) or isinstance(meta.get(k), bool))]
    if not bad and not all(isinstance(meta["task"].get(k), str) for k in ("hash", "file")):
        bad = ["task"]
    if not bad and not all(isinstance(meta["gold"].get(k), str) for k in ("sha256", "path")):
        bad = ["gold"]
    if bad:
        raise FracdataError(f"{path}: not a meta file written by `fracbench infer` (missing or wrong: {', '.join(bad)}); "
                            "re-run infer for this model")
    return meta


def list_models(out_dir) -> list[str]:
    d = Path(out_dir) / "predictions"
    return sorted(p.name[: -len(".meta.json")] for p in d.glob("*.meta.json"))


def read_predictions(out_dir, name: str, item_ids: list[str]) -> tuple[dict[str, dict], dict]:
    """({id: row}, meta) for one model; every gold id must have exactly one row."""
    rows_path, meta_path = pred_paths(out_dir, name)
    if not rows_path.is_file() or not meta_path.is_file():
        raise FracdataError(f"{rows_path}: predictions for {name!r} not found: run `fracbench infer --model {name}` first")
    meta = read_meta(meta_path)
    rows: dict[str, dict] = {}
    for lineno, row, what, why in json_lines(rows_path):  # the lines read_jsonl reads
        if row is None:
            raise FracdataError(f"{rows_path}:{lineno}: " + (f"malformed JSON ({why})" if what == "json" else why))
        missing = {"id", "model", "raw", "labels", "status"} - set(row)
        if missing:
            raise FracdataError(f"{rows_path}:{lineno}: missing keys {sorted(missing)}")
        wrong = [k for k in ("labels", "unknown") if k in row and not (
            isinstance(row[k], list) and all(isinstance(t, str) for t in row[k]))]
        problem = text_problem(row)
        if not isinstance(row["id"], str) or not isinstance(row["status"], str) or wrong or problem:
            raise FracdataError(f"{rows_path}:{lineno}: not a row written by `fracbench infer` "
                                f"({problem or 'id and status must be strings, labels and unknown lists of strings'})")
        if row["status"] not in STATUSES:
            raise FracdataError(f"{rows_path}:{lineno}: unknown status {row['status']!r} (one of {', '.join(STATUSES)})")
        if row["id"] in rows:
            raise FracdataError(f"{rows_path}:{lineno}: second row for id {row['id'][:12]}…")
        rows[row["id"]] = row
    absent = [i for i in item_ids if i not in rows]
    extra = set(rows) - set(item_ids)
    if absent or extra:
        raise FracdataError(f"{rows_path}: {len(absent)} gold ids have no prediction and {len(extra)} predictions "
                            f"are not in the gold set: re-run `fracbench infer` with the same --gold/--limit")
    return rows, meta

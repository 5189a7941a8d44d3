"""Shared helpers for the benchmark's tests: a small gold set with two annotators, model entries, rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fracdata.records import GoldRecord, dump_jsonl, read_jsonl

N = 4


def make_gold(synth: Path, out: Path, n: int = N) -> list[str]:
    """The first n synthetic gold items, copied with a second annotator (for Cohen's kappa)."""
    (out / "img").mkdir(parents=True)
    recs = []
    for _, rec in list(read_jsonl(synth / "gold.jsonl", GoldRecord, "test"))[:n]:
        shutil.copy(synth / rec.image, out / "img" / Path(rec.image).name)
        second = rec.features if len(recs) % 2 else [*rec.features, "fish_eye"]
        recs.append(GoldRecord(id=rec.id, image=f"img/{Path(rec.image).name}", features=rec.features,
                               annotators={"ann1": rec.features, "ann2": second}))
    dump_jsonl(recs, out / "gold.jsonl")
    return [r.id for r in recs]


def entry(tmp: Path, name: str, model: Path, batch: int) -> str:
    p = tmp / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: local\npath: {model}\nbatch_size: {batch}\ndecoding: {{max_new_tokens: 8}}\n")
    return str(p)


def rows(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions" / f"{name}.jsonl").read_text().splitlines()]


def gold_set(folder: Path, features: list[list[str]], papers: list[str] | None = None,
             parents: list[str | None] | None = None) -> tuple[Path, list[str]]:
    """A gold file of len(features) distinct small images; `papers` gives each record a source DOI,
    `parents` a `source.parent` (the micrograph a tile was cut from)."""
    from PIL import Image

    from fracdata.images import image_id
    from fracdata.records import Source

    (folder / "img").mkdir(parents=True)
    recs = []
    for i, feats in enumerate(features):
        p = folder / "img" / f"{i}.png"
        Image.new("L", (64, 64 + i), i % 256).save(p)  # the height makes every image distinct
        doi, parent = papers[i] if papers else None, parents[i] if parents else None
        source = Source(doi=doi, parent=parent) if doi or parent else None
        recs.append(GoldRecord(id=image_id(p), image=f"img/{i}.png", features=feats, source=source))
    dump_jsonl(recs, folder / "gold.jsonl")
    return folder / "gold.jsonl", [r.id for r in recs]


def labels_file(path: Path, by_id: dict[str, list[str]]) -> Path:
    """A LabelRecord JSONL (as `fracdata label` writes) with the given features per id."""
    from fracdata.records import Labeler, LabelRecord

    lab = Labeler(kind="gpt", model="gpt-5.2")
    dump_jsonl([LabelRecord(id=i, features=f, labeler=lab) for i, f in by_id.items()], path)
    return path


def labels_entry(folder: Path, name: str, path: Path) -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: labels\npath: {path}\n")
    return str(p)

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

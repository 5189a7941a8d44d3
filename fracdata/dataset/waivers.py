"""Waivers: a person looked at a pair the gold guard flagged and judged the two images distinct.

    fracdata build ... --gold gold.jsonl --waivers waivers.jsonl

One JSON object per line, every key required, no other key (a typo is an error, not a silently
ignored waiver):

    {"gold": "<gold id>", "train": "<training id>", "reason": "different fields; only the data bar
     matches", "who": "A. Reviewer, 2026-12-05"}

A waiver lets exactly that (gold, training) pair through every check (copy, shared region,
shared parent); nothing else. The card lists every waiver, what the guard found for the pair
and whether it matched anything; a waiver that matches nothing is printed and listed too (the
images changed, or the file names the wrong pair). A file that cannot be read is an error:
a build must not fail or pass on a waiver it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from fracdata.errors import FracdataError
from fracdata.records import SHA256_RE, Reject, read_jsonl


class WaiverRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gold: str = Field(pattern=SHA256_RE)
    train: str = Field(pattern=SHA256_RE)
    reason: str = Field(min_length=1)
    who: str = Field(min_length=1)


@dataclass(frozen=True)
class Waiver:
    gold: str
    train: str
    reason: str
    who: str
    where: str  # file:line


def read_waivers(paths: list[Path]) -> dict[tuple[str, str], Waiver]:
    """{(gold id, training id): Waiver}; any unreadable line, or a pair waived twice, is one error."""
    out: dict[tuple[str, str], Waiver] = {}
    problems = []
    for path in paths:
        if not Path(path).is_file():
            raise FracdataError(f"{path}: no such waivers file")
        for lineno, rec in read_jsonl(path, WaiverRecord, "build"):
            where = f"{path}:{lineno}"
            if isinstance(rec, Reject):
                problems.append(f"{where}: {rec.reason} ({rec.detail})")
            elif (rec.gold, rec.train) in out:
                problems.append(f"{where}: pair already waived at {out[rec.gold, rec.train].where}")
            else:
                out[rec.gold, rec.train] = Waiver(rec.gold, rec.train, rec.reason.strip(), rec.who.strip(), where)
    if problems:
        raise FracdataError(f"waivers: {len(problems)} line(s) cannot be read: " + "; ".join(problems)
                            + " (each line: {gold, train, reason, who}, nothing else)")
    return out


def account(waivers: dict[tuple[str, str], Waiver], used: dict[tuple[str, str], list[str]]) -> list[dict]:
    """Every waiver for the card and build.json: what it waived (the guard's findings), or 'matched nothing'."""
    return [{"gold": w.gold, "train": w.train, "reason": w.reason, "who": w.who, "where": w.where,
             "waived": used.get(key, [])} for key, w in sorted(waivers.items())]

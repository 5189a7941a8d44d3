"""The record formats every stage reads and writes (validated with pydantic).

One record is keyed by `id` = sha256 of the image bytes, from the miner to the report.
Formats (one JSON object per line; examples in docs/formats.md):
  manifest  ManifestRecord   one mined image
  labels    LabelRecord      features for one image id (GPT, human or synthetic labeller)
  gold      GoldRecord       the hand-annotated benchmark
  rejects   Reject           what a stage refused, with the reason
Unknown keys are errors (`extra="forbid"`), so a typo never passes silently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fracdata.untrusted import REASON as UNENCODABLE, escape, loads, text_problem

SHA256_RE = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    doi: str | None = None
    title: str | None = None
    journal: str | None = None
    year: int | None = None
    figure: str | None = None  # figure label as printed, e.g. "Fig. 3"
    panel: str | None = None  # panel letter, e.g. "b"
    licence: str | None = None  # e.g. "CC BY 4.0"
    url: str | None = None
    file: str | None = None  # source file the image came from (nxml/pdf), relative
    page: int | None = None  # PDF page, 1-based


class ManifestRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    image: str  # path relative to the manifest file
    source: Source = Field(default_factory=Source)
    caption: str = ""
    excerpts: list[str] = Field(default_factory=list)


class Labeler(_Strict):
    kind: Literal["gpt", "human", "synthetic"]
    model: str | None = None  # requested model, e.g. "gpt-5.2"
    prompt_version: str | None = None
    taxonomy_version: int | None = None
    effort: str | None = None
    # audit fields written by `fracdata label`
    response_model: str | None = None  # model name the API returned
    request_id: str | None = None
    usage: dict[str, int] | None = None
    created: str | None = None  # ISO-8601 UTC
    cache_key: str | None = None
    annotator: str | None = None  # human labels: who decided (the Label Studio user, `fracdata review`)


class LabelRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    features: list[str]  # taxonomy ids (names are normalised by the builder)
    labeler: Labeler
    rationale: str | None = None
    evidence: dict[str, str] | None = None  # feature id -> what in the image shows it
    image_type: str | None = None
    material: str | None = None
    magnification: str | None = None


class GoldRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    image: str  # path relative to the gold file
    features: list[str]
    annotators: dict[str, list[str]] | None = None  # {name: [features]}; two or more give Cohen's kappa
    note: str | None = None
    source: Source | None = None  # the paper it came from, as in the manifest (at least `doi`)

    @field_validator("annotators")
    @classmethod
    def _at_least_one(cls, v):
        if v is not None and len(v) < 1:
            raise ValueError("annotators must name at least one annotator (or leave the key out)")
        return v


class Reject(_Strict):
    stage: str
    file: str
    line: int | None = None
    id: str | None = None
    reason: str
    detail: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _writable(cls, data):
        """A reject describes hostile input: its text is escaped so that it can always be written."""
        if isinstance(data, dict):
            return {k: escape(v) if isinstance(v, str) else v for k, v in data.items()}
        return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_jsonl(path: str | Path, model: type[BaseModel], stage: str) -> Iterator[tuple[int, BaseModel | Reject]]:
    """Yield (line number, record) or (line number, Reject) for every non-blank line.

    A malformed line is a reject with the reason, never a silent skip or a crash, so
    kept + rejected = read holds for the caller. Text UTF-8 cannot encode (a `\\ud800` escape)
    is the reject `unencodable_text` (fracdata/untrusted.py): kept records can always be written.
    """
    path = Path(path)
    with open(path, "rb") as f:  # bytes: one non-UTF-8 line is a reject, not a crash of the whole read
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason="malformed_json",
                                     detail=f"not UTF-8 (byte {e.start})")
                continue
            except json.JSONDecodeError as e:
                yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason="malformed_json", detail=str(e))
                continue
            if not isinstance(obj, dict):
                yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason="malformed_json", detail="not a JSON object")
                continue
            problem = text_problem(obj)
            if problem is not None:
                yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason=UNENCODABLE, detail=problem,
                                     id=obj.get("id") if isinstance(obj.get("id"), str) else None)
                continue
            try:
                yield lineno, model.model_validate(obj)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                yield lineno, Reject(stage=stage, file=str(path), line=lineno,
                                     id=obj.get("id") if isinstance(obj.get("id"), str) else None,
                                     reason="invalid_record", detail=f"{where}: {first['msg']}")


def dump_jsonl(records, path: str | Path, durable: bool = False) -> int:
    """Write records (pydantic models or dicts) as compact, key-sorted JSON lines; return count.

    Atomic (fracdata.files.atomic_path): the file holds all lines or its old contents, never a part.
    """
    from fracdata.files import atomic_path

    n = 0
    with atomic_path(path, durable) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            obj = rec.model_dump(exclude_none=True) if isinstance(rec, BaseModel) else rec
            f.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n

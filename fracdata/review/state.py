"""`DIR/review.json`: what one review is (kind, images by id, where its project lives).

Written by `fracdata review gold|audit|manual`, updated by `push` (the Label Studio project)
and `import` (the sha256 of every file it wrote, so a rerun may replace its own outputs but
never a file someone else wrote). Paths inside are relative to DIR, so the folder can move.
`uid` is random per review and travels in every task (`data.fracdata_review`): an export
from another project is recognised by it, not by file names or task order.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes
from fracdata.records import SHA256_RE, Source, _Strict, sha256_file

STATE = "review.json"
TASKS = "tasks.json"
CONFIG = "label_config.xml"
Kind = Literal["gold", "audit", "manual"]


class Item(_Strict):
    id: str = Field(pattern=SHA256_RE)
    image: str  # relative to the review folder
    caption: str = ""
    excerpts: list[str] = Field(default_factory=list)
    source: Source | None = None
    gpt: list[str] | None = None  # audit: the GPT features at sample time (the pre-annotation)
    suspect: str | None = None  # audit --suspects: which labels of the image are under suspicion, and why


class Server(_Strict):
    url: str
    project: int
    tasks: int


class Review(_Strict):
    kind: Kind
    uid: str
    created: str
    taxonomy_version: int
    taxonomy_sha256: str
    label_config_sha256: str
    items: list[Item]
    annotators: int = 1  # overlap: how many people label each task (gold: 2 or more)
    show_gpt: bool = False  # audit: the GPT answer is a pre-annotation
    labels: str | None = None  # audit: the GPT labels file scored against (relative)
    folder: str | None = None  # manual: the collection folder whose labels.jsonl import writes
    sample: dict | None = None  # audit: n, seed, strata (or, with suspects, the suspects file and ranks)
    suspects: str | None = None  # audit --suspects: the suspects file (relative); its view shows why
    server: Server | None = None
    written: dict[str, str] = Field(default_factory=dict)  # path relative to DIR -> sha256 of what import wrote


def new(kind: str, taxonomy, config_sha: str, items: list[Item], **kw) -> Review:
    return Review(kind=kind, uid=uuid.uuid4().hex, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  taxonomy_version=taxonomy.version, taxonomy_sha256=taxonomy.sha256, label_config_sha256=config_sha,
                  items=items, **kw)


def rel(path: Path, folder: Path) -> str:
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def load(folder: Path) -> Review:
    path = Path(folder) / STATE
    if not path.is_file():
        raise FracdataError(f"{path}: not found: prepare the review first (fracdata review gold|audit|manual --out {folder})")
    try:
        return Review.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FracdataError(f"{path}: not valid JSON ({e})") from None
    except ValidationError as e:
        first = e.errors()[0]
        raise FracdataError(f"{path}: not a review file ({'.'.join(map(str, first['loc']))}: {first['msg']})") from None


def save(review: Review, folder: Path) -> Path:
    path = Path(folder) / STATE
    atomic_write_bytes(path, (json.dumps(review.model_dump(exclude_none=True), indent=1, ensure_ascii=False) + "\n").encode())
    return path


def check_writable(review: Review, folder: Path, target: Path, force: bool) -> None:
    """A file import writes must be absent, or the one it wrote last time (same sha256), or --force."""
    if not target.exists() or force:
        return
    key = rel(target, folder)
    if review.written.get(key) != sha256_file(target):
        raise FracdataError(f"{target}: exists and was not written by this review's import "
                            "(pass --out elsewhere, or --force to replace it)")


def record_written(review: Review, folder: Path, paths) -> None:
    for p in paths:
        review.written[rel(p, folder)] = sha256_file(p)

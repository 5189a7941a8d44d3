"""The fixed answer format: what the dataset teaches and what the benchmark parser reads back.

Prompt (user turn):  templates/prompt.j2, starting with the single `<image>` placeholder.
Answer (assistant):  `Features: <id>, <id>` with taxonomy ids in taxonomy order, or
                     `Features: none` for an image with no taxonomy feature.

`parse_answer` also reads what other models say (JSON lists or objects, markdown fences,
comma/semicolon/newline/bullet lists, display names, synonyms, any case, plurals); terms it
cannot map are returned as `unknown`, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

PREFIX = "Features:"
NONE_WORDS = {"none", "no feature", "nothing", "n/a", "na", "no fracture feature", "[]"}


@lru_cache(maxsize=None)
def _template(name: str):
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(resources.files("fracdata").joinpath("templates", name).read_text().rstrip("\n"))


def template_sha256() -> str:
    """Hash of both templates: part of every dataset card and benchmark task hash."""
    h = hashlib.sha256()
    for name in ("prompt.j2", "answer.j2"):
        h.update(resources.files("fracdata").joinpath("templates", name).read_bytes())
    return h.hexdigest()


def render_prompt(**context) -> str:
    return _template("prompt.j2").render(**context)


def render_answer(feature_ids: list[str], taxonomy=None) -> str:
    if taxonomy is not None:
        feature_ids = taxonomy.sort(feature_ids)
    return _template("answer.j2").render(features=list(feature_ids))


@dataclass
class Parsed:
    labels: list[str] = field(default_factory=list)  # taxonomy ids, taxonomy order
    unknown: list[str] = field(default_factory=list)  # terms that map to no id
    status: str = "ok"  # ok | empty | none | unparsed


_FENCE = re.compile(r"```(?:json|text)?\s*(.*?)```", re.S)


def _terms(text: str) -> list[str] | None:
    """Split an answer into candidate terms; None when it is not a list at all."""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    text = text.strip()
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict):
        for key in ("features", "labels", "morphology", "answer"):
            if key in obj:
                obj = obj[key]
                break
    if isinstance(obj, list):
        return [str(x.get("id") or x.get("name") or "") if isinstance(x, dict) else str(x) for x in obj]
    if isinstance(obj, str):
        text = obj
    # keep only what follows the last "Features:" if present
    idx = text.lower().rfind(PREFIX.lower())
    if idx >= 0:
        text = text[idx + len(PREFIX):]
    parts = re.split(r"[,;\n]|\band\b", text)
    terms = []
    for p in parts:
        p = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", p)  # bullets, numbering
        p = p.strip().strip(".`\"'[]{}()").strip()
        if p:
            terms.append(p)
    return terms


def parse_answer(text: str | None, taxonomy) -> Parsed:
    if text is None or not text.strip():
        return Parsed(status="empty")
    terms = _terms(text)
    if not terms:
        return Parsed(status="empty")
    if len(terms) == 1 and terms[0].lower() in NONE_WORDS:
        return Parsed(status="none")
    ids, unknown = taxonomy.normalize_all(terms)
    unknown = [u for u in unknown if u.lower() not in NONE_WORDS]
    status = "ok" if ids or not unknown else "unparsed"
    return Parsed(labels=ids, unknown=unknown, status=status)

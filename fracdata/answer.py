"""The fixed answer format: what the dataset teaches and what the benchmark parser reads back.

Prompt (user turn):  templates/prompt.j2, starting with the single `<image>` placeholder.
Answer (assistant):  `Features: <id>, <id>` with taxonomy ids in taxonomy order, or
                     `Features: none` for an image with no taxonomy feature.

`parse_answer` also reads what other models say (JSON lists or objects, markdown fences,
comma/semicolon/newline/bullet lists, display names, synonyms, any case, plurals, `<think>`
blocks, and sentences that name features: "shows fatigue striations but no chevrons"); terms
it cannot map are returned as `unknown`, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

PREFIX = "Features:"
NONE_WORDS = {"none", "no feature", "nothing", "n/a", "na", "no fracture feature", "[]", "no features",
              "none visible", "none observed", "none detected", "no taxonomy feature", "no fracture features",
              "none of the above", "null"}


@lru_cache(maxsize=None)
def template(name: str):
    """A packaged template (fracdata/templates/<name>), strict about undefined names, compiled once.

    Shared by the dataset's prompt and answer (here) and the labeller's request (label/prompt.py)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(resources.files("fracdata").joinpath("templates", name).read_text().rstrip("\n"))


@lru_cache(maxsize=None)
def templates_sha256(names: tuple[str, ...]) -> str:
    """sha256 over the bytes of the named packaged templates, in order."""
    h = hashlib.sha256()
    for name in names:
        h.update(resources.files("fracdata").joinpath("templates", name).read_bytes())
    return h.hexdigest()


def template_sha256() -> str:
    """Hash of both templates: part of every dataset card and benchmark task hash."""
    return templates_sha256(("prompt.j2", "answer.j2"))


def render_prompt(**context) -> str:
    return template("prompt.j2").render(**context)


def render_answer(feature_ids: list[str], taxonomy=None) -> str:
    if taxonomy is not None:
        feature_ids = taxonomy.sort(feature_ids)
    return template("answer.j2").render(features=list(feature_ids))


@dataclass
class Parsed:
    labels: list[str] = field(default_factory=list)  # taxonomy ids, taxonomy order
    unknown: list[str] = field(default_factory=list)  # terms that map to no id
    status: str = "ok"  # ok | empty | none | unparsed


_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)  # reasoning templates, even unclosed
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)```", re.S)
_JSON_SPAN = re.compile(r"(\[.*\]|\{.*\})", re.S)  # outermost list/object inside prose
_OBJ_KEYS = ("features", "labels", "morphology", "answer", "feature_ids", "ids")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|\(?[a-z]\))\s+", re.I)
_AND = re.compile(r"\s+(?:and|&)\s+|\s*&\s*", re.I)
_WORD = re.compile(r"[A-Za-z0-9']+")
# Free-text scanning (a sentence that names features) ignores these aliases, which are also
# common English words in a fractography answer ("near the origin", "a small particle").
# Acronyms (HE, SCC, MVC, ...) count in free text only when written in capitals.
_GENERIC = {"he", "lap", "seam", "origin", "particle", "pore", "step", "ripple"}
# "No features visible", "There are no fracture features present": an explicit none.
_NONE_RE = re.compile(r"^(?:there (?:are|is) )?no (?:\w+[- ])?(?:fracture[- ]surface |fracture )?features?"
                      r"(?: (?:are |is )?(?:visible|observed|detected|present|seen|shown|found))?$", re.I)
_NEGATION = {"no", "not", "without", "absent", "neither", "nor", "lack", "lacks", "lacking", "absence"}


def _loads(text: str):
    """JSON (or a Python literal such as ['a', 'b']) -> object, else None."""
    import ast

    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError, RecursionError):  # RecursionError: nested past ~1,000 levels
        pass
    try:
        obj = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return obj if isinstance(obj, (list, tuple, dict)) else None


def _from_json(obj) -> list[str] | str | None:
    """Terms from a JSON answer: a list, {"features": [...]}, {"name": true, ...}, [{"id": ..}]."""
    if isinstance(obj, dict):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _OBJ_KEYS if k in lowered), None)
        if key is not None:
            return _from_json(lowered[key])
        if obj and all(isinstance(v, bool) for v in obj.values()):  # {"beach marks": true, ...}
            return [str(k) for k, v in obj.items() if v]
        return None
    if isinstance(obj, (list, tuple)):
        terms = []
        for x in obj:
            if isinstance(x, dict):
                if x.get("present") is False:
                    continue
                x = x.get("id") or x.get("name") or x.get("feature") or ""
            terms.append(str(x))
        return terms
    if isinstance(obj, str):
        return obj
    if obj is None:
        return []
    return None


def _after_prefix(text: str) -> str:
    """What follows the last "Features:": its line, or the lines below when that line is empty."""
    idx = text.lower().rfind(PREFIX.lower())
    if idx < 0:
        return text
    line, _, below = text[idx + len(PREFIX):].partition("\n")
    return line.strip() if line.strip() else below.strip()


def _split(text: str) -> list[str]:
    terms = []
    for p in re.split(r"[,;\n|]", _after_prefix(text)):
        p = _BULLET.sub("", p)
        p = p.strip().strip(".:`\"'[]{}()*").strip()
        if p:
            terms.append(p)
    return terms


def _terms(text: str) -> list[str]:
    """Split an answer into candidate terms (JSON, fenced, prefixed or plain lists)."""
    text = _THINK.sub("", text)
    m = _FENCE.search(text)
    text = _after_prefix((m.group(1) if m else text).strip())
    obj = None
    if text[:1] in "[{":
        obj = _loads(text)
    elif PREFIX.lower() not in text.lower():  # JSON inside prose: only a span with quoted strings
        span = _JSON_SPAN.search(text)
        if span and re.search(r"[\"']", span.group(1)):
            obj = _loads(span.group(1))
    try:
        found = _from_json(obj) if obj is not None else None
    except RecursionError:  # {"features": {"features": ...}} nested hundreds deep: read as text
        found = None
    if isinstance(found, list):  # an empty JSON list is an explicit "none"
        return [t.strip() for t in found if t.strip()] or ["none"]
    return _split(found if isinstance(found, str) else text)


def _scan(term: str, taxonomy) -> tuple[list[str], int]:
    """(feature ids named inside free text, longest alias first; how many mentions were negated)."""
    acronyms = {a.lower() for f in taxonomy.features for a in (f.id, *f.synonyms) if a.isupper()}
    words = _WORD.findall(term)
    found, negated, i = [], 0, 0
    while i < len(words):
        for n in range(min(6, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            fid = taxonomy.lookup(phrase)
            acronym = phrase.lower() in acronyms
            if fid is None or (n == 1 and ((acronym and not phrase.isupper())
                                           or (phrase.lower() in _GENERIC and not acronym))):
                continue
            if _NEGATION & {w.lower() for w in words[max(0, i - 3):i]}:  # "no chevron marks"
                negated += 1
            else:
                found.append(fid)
            i += n - 1
            break
        i += 1
    return found, negated


def _map(term: str, taxonomy) -> list[str] | None:
    """Ids for one term: whole term, then its "and"-parts, then a free-text scan; None = unknown."""
    fid = taxonomy.lookup(term)
    if fid is not None:
        return [fid]
    parts = [p for p in _AND.split(term) if p.strip()]
    if len(parts) > 1:
        ids = [taxonomy.lookup(p.strip(" .")) for p in parts]
        if all(ids):
            return ids
    found, negated = _scan(term, taxonomy)
    # A term that only names features to deny them ("but no chevron marks") maps to nothing;
    # a term that names none at all is unknown.
    return found if found or negated else None


def _is_none(term: str) -> bool:
    return term.lower() in NONE_WORDS or bool(_NONE_RE.match(term))


def parse_answer(text: str | None, taxonomy) -> Parsed:
    """Map an answer to taxonomy ids. Status: ok (a list, possibly with unknown terms), none (the
    model said "none"), empty (no text), unparsed (text in which no term maps to an id)."""
    if text is None or not _THINK.sub("", text).strip():
        return Parsed(status="empty")
    terms = _terms(text)
    if not terms:  # e.g. "Features:" and nothing after it
        return Parsed(status="empty")
    if all(_is_none(t) for t in terms):
        return Parsed(status="none")
    ids, unknown = [], []
    for term in terms:
        if _is_none(term):
            continue
        mapped = _map(term, taxonomy)
        if mapped is None:
            unknown.append(term)
        else:
            ids += mapped
    ids = taxonomy.sort(ids)
    return Parsed(labels=ids, unknown=unknown, status="ok" if ids or not unknown else "unparsed")

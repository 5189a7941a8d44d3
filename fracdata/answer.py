"""The fixed answer format: what the dataset teaches and what the benchmark parser reads back.

Prompt (user turn):  templates/prompt.j2, starting with the single `<image>` placeholder.
Answer (assistant):  `Features: <id>, <id>` with taxonomy ids in taxonomy order, or
                     `Features: none` for an image with no taxonomy feature.

`parse_answer` also reads what other models say (JSON lists or objects, markdown fences,
comma/semicolon/newline/bullet lists, display names, synonyms, any case, plurals, `<think>`
blocks, and sentences that name features: "shows fatigue striations but no chevrons"); terms
it cannot map are returned as `unknown`, never dropped.

A feature is credited only for its id, name or synonym as a whole term: hyphen- or underscore-
joined words are one word ("dimple-free", "unobtanium_dimple" credit nothing; shown as unknown).
A denied mention is shown as an unknown term as written, never credited: a cue up to four words
before it in its clause ("no dimples", "absence of striations", "neither ... nor ..."), a copula
and a denial after it ("dimples are absent"), or a -free/-less word ("pore-free"). A clause
ends at a sentence mark or "but", "and", "with", ... ("no dimples but clear striations")."""

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
# Free-text scanning (a sentence that names features) ignores these aliases, which are also
# common English words in a fractography answer ("near the origin", "a small particle").
# Acronyms (HE, SCC, MVC, ...) count in free text only when written in capitals.
_GENERIC = {"he", "lap", "seam", "origin", "particle", "pore", "step", "ripple"}
# "No features visible", "There are no fracture features present": an explicit none.
_NONE_RE = re.compile(r"^(?:there (?:are|is) )?no (?:\w+[- ])?(?:fracture[- ]surface |fracture )?features?"
                      r"(?: (?:are |is )?(?:visible|observed|detected|present|seen|shown|found))?$", re.I)
# Denials (see the module doc): cues before a mention, words that end the clause a cue governs,
# and a copula + denial after one.
_NEG_BEFORE = {"no", "not", "without", "absent", "neither", "nor", "lack", "lacks", "lacking", "absence", "free",
               "devoid", "never", "none", "nothing", "non", "rather"}
_CLAUSE_BREAK = {"but", "and", "with", "however", "although", "though", "while", "whereas", "yet", "which", "shows",
                 "show", "showing", "exhibits", "exhibit", "reveals", "reveal", "displays", "contains", "has", "have"}
_COPULA = {"is", "are", "was", "were", "be", "been", "being", "appear", "appears", "appeared", "seem", "seems",
           "remain", "remains", "clearly", "entirely", "completely"}
_NEG_AFTER = {"absent", "missing", "lacking", "not", "none", "never"}
_SEEN = {"observed", "seen", "visible", "present", "found", "evident", "detected", "apparent", "identified", "shown"}
_TOKEN = re.compile(r"[A-Za-z0-9'\u2019]+(?:[-_][A-Za-z0-9'\u2019]+)*")  # a hyphen or underscore joins one word
_STOP = re.compile(r"[.!?:;()\[\]]")  # between two words: the clause (and what a denial governs) ends
_FREE = re.compile(r"^(.+)[-_](?:free|less)$", re.I)  # "dimple-free", "pore-less"


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


def _scan(term: str, taxonomy) -> tuple[list[str], list[str]]:
    """(feature ids named inside free text, longest alias first; the denied mentions and the
    joined words holding a feature name, as written, for `unknown`)."""
    acronyms = {a.lower() for f in taxonomy.features for a in (f.id, *f.synonyms) if a.isupper()}
    tokens = list(_TOKEN.finditer(term))
    words = [t.group() for t in tokens]
    # a sentence or clause mark between two words ends what a denial governs
    stops = {j for j in range(1, len(tokens)) if _STOP.search(term, tokens[j - 1].end(), tokens[j].start())}
    found, unknown, i, denied_to = [], [], 0, None
    while i < len(words):
        for n in range(min(6, len(words) - i), 0, -1):
            if stops & set(range(i + 1, i + n)):  # a phrase never spans a sentence or clause mark
                continue
            phrase = " ".join(words[i:i + n])
            fid = taxonomy.lookup(phrase)
            acronym = phrase.lower() in acronyms
            if fid is None or (n == 1 and ((acronym and not phrase.isupper())
                                           or (phrase.lower() in _GENERIC and not acronym))):
                continue
            first, last = _denied_from(words, i, stops), _denied_to(words, i + n, stops)
            if first is None and denied_to is not None and _coordinated(words, denied_to, i, stops):
                first = i  # "no striations or beach marks": the denial reaches across "or"/"nor"
            if first is not None or last is not None:  # "no chevron marks", "dimples are absent"
                a, b = (i if first is None else first), (i + n - 1 if last is None else last)
                unknown.append(term[tokens[a].start():tokens[b].end()])
                denied_to = b + 1
            else:
                found.append(fid)
                denied_to = None
            i += n
            break
        else:
            if _holds_feature(words[i], taxonomy):  # "dimple-free", "unobtanium_dimple"
                unknown.append(words[i])
            i += 1
    return found, unknown


def _denied_from(words: list[str], i: int, stops: set[int]) -> int | None:
    """Index of a denial cue up to four words before words[i], in the same clause, else None."""
    for j in range(i - 1, max(-1, i - 5), -1):
        w = words[j].lower()
        if w in _CLAUSE_BREAK or j + 1 in stops:
            return None
        if w in _NEG_BEFORE:
            return j
    return None


def _denied_to(words: list[str], k: int, stops: set[int]) -> int | None:
    """Index of the last word of a denial right after a mention that ends before words[k]
    ("are absent", "were not observed"), else None."""
    j = k
    while j < len(words) and j < k + 3 and j not in stops and words[j].lower() in _COPULA:
        j += 1
    if j < len(words) and j not in stops and words[j].lower() in _NEG_AFTER:
        return j + 1 if j + 1 < len(words) and j + 1 not in stops and words[j + 1].lower() in _SEEN else j
    return None


def _coordinated(words: list[str], a: int, i: int, stops: set[int]) -> bool:
    """words[a:i] only join two mentions in a list ("or", "nor"), with no clause mark between."""
    return 0 < i - a <= 2 and all(w.lower() in ("or", "nor") for w in words[a:i]) and not stops & set(range(a, i + 1))


def _holds_feature(word: str, taxonomy) -> bool:
    """A hyphen/underscore-joined word that is no alias but holds one ("cleavage-like",
    "unobtanium_dimple"; a -free/-less word even on a generic one: "pore-free")."""
    parts = re.split(r"[-_]", word)
    if len(parts) < 2:
        return False
    free = _FREE.match(word)
    if free and taxonomy.lookup(free.group(1)) is not None:
        return True
    spans = (" ".join(parts[a:b]) for a in range(len(parts)) for b in range(a + 1, len(parts) + 1))
    return any(taxonomy.lookup(x) is not None and x.lower() not in _GENERIC for x in spans)


def _map(term: str, taxonomy) -> tuple[list[str], list[str]]:
    """(ids, unknown pieces) for one term: whole term, then its "and"-parts, then a free-text
    scan. A term that credits nothing is unknown: its denied or joined words, else the whole term."""
    fid = taxonomy.lookup(term)
    if fid is not None:
        return [fid], []
    parts = [p for p in _AND.split(term) if p.strip()]
    if len(parts) > 1:
        ids = [taxonomy.lookup(p.strip(" .")) for p in parts]
        if all(ids):
            return ids, []
    found, unknown = _scan(term, taxonomy)
    return found, unknown if found or unknown else [term]


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
        found, rest = _map(term, taxonomy)
        ids += found
        unknown += rest
    ids = taxonomy.sort(ids)
    return Parsed(labels=ids, unknown=unknown, status="ok" if ids or not unknown else "unparsed")

"""Per-feature confidence from token log-probabilities: pure functions, no model needed.

The specialist answers "Features: a, b". A feature's confidence is the joint probability of the
tokens that spell its term, given everything before it:
    confidence = exp(sum of the log-probabilities of the tokens overlapping the term's characters)
e.g. "river_pattern" as tokens "river" (-0.05), "_pattern" (-0.01) -> exp(-0.06) = 0.94.
The first token of a term carries nearly all of the doubt (which feature comes next); the rest
are spelling. A term that names two features ("striations and beach marks") gives both the
same number. A feature the parser found somewhere no term span covers (e.g. inside a JSON
answer) gets None rather than a guess.
"""

from __future__ import annotations

import math
import re

_SEP = re.compile(r"[,;\n|]")


def token_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Character span of each token in "".join(tokens)."""
    spans, pos = [], 0
    for t in tokens:
        spans.append((pos, pos + len(t)))
        pos += len(t)
    return spans


def term_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the comma/semicolon/newline-separated terms after the last "Features:" (trimmed)."""
    idx = text.lower().rfind("features:")
    start = idx + len("features:") if idx >= 0 else 0
    spans, pos = [], start
    for m in list(_SEP.finditer(text, start)) + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        lead = len(piece) - len(piece.lstrip(" \t-*•.`\"'[]"))
        core = piece.strip(" \t-*•.`\"'[]")
        if core:
            spans.append((pos + lead, pos + lead + len(core)))
        pos = end + 1 if m else end
    return spans


def feature_confidence(tokens: list[str], logprobs: list[float], taxonomy) -> dict[str, float]:
    """{feature id: confidence} for the features the answer's terms name (see module doc).

    `tokens` are the decoded pieces of the answer in order ("".join(tokens) is the answer text)
    and `logprobs` their natural-log probabilities. When a feature is named twice, the higher
    confidence is kept.
    """
    from fracdata.answer import parse_answer

    if len(tokens) != len(logprobs):
        raise ValueError(f"{len(tokens)} tokens but {len(logprobs)} log-probabilities")
    text = "".join(tokens)
    tspans = token_spans(tokens)
    out: dict[str, float] = {}
    for a, b in term_spans(text):
        ids = parse_answer(text[a:b], taxonomy).labels
        if not ids:
            continue
        lp = sum(l for (s, e), l in zip(tspans, logprobs) if s < b and e > a and e > s)
        conf = round(math.exp(lp), 6)
        for fid in ids:
            out[fid] = max(out.get(fid, 0.0), conf)
    return out

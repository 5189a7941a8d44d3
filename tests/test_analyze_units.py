"""Pure parts of `fracdata analyze`: confidence from token log-probabilities, the citation check,
the Markdown report (whole text), the watch log's repair."""

from __future__ import annotations

import math

import pytest

from fracdata.analyze.confidence import feature_confidence, term_spans
from fracdata.analyze.report import render_markdown
from fracdata.analyze.schema import Analysis, GeneralistAnswer, check_citations
from fracdata.analyze.watch import load_log
from fracdata.errors import FracdataError
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()


def test_term_spans_cover_each_term_after_the_prefix():
    text = "Features: river_pattern, beach marks;  `fish_eye`."
    assert [text[a:b] for a, b in term_spans(text)] == ["river_pattern", "beach marks", "fish_eye"]


def test_confidence_is_the_joint_probability_of_each_terms_tokens():
    # API-style pieces (OpenAI logprobs.content tokens) and a local EOS that decodes to ""
    tokens = ["Features", ":", " river", "_pattern", ",", " beach", " marks", ",", " wibble", ""]
    lps = [-0.01, 0.0, -0.05, -0.01, -0.2, -1.0, -0.5, -0.3, -2.0, -0.1]
    assert feature_confidence(tokens, lps, TAX) == {
        "river_pattern": round(math.exp(-0.06), 6),  # " river" + "_pattern"; the comma is not part of it
        "beach_marks": round(math.exp(-1.5), 6)}  # "wibble" names no feature: no confidence for it


def test_a_term_naming_two_features_gives_both_its_confidence_and_a_repeat_keeps_the_higher():
    tokens = ["Features: ", "striations", " and", " beach marks", ", ", "beach marks"]
    lps = [0.0, -0.1, -0.2, -0.3, 0.0, -0.05]
    assert feature_confidence(tokens, lps, TAX) == {"striation_ductile": round(math.exp(-0.6), 6),
                                                    "beach_marks": round(math.exp(-0.05), 6)}


def test_an_unprefixed_answer_is_split_the_same_way_and_mismatched_lengths_are_an_error():
    # no "Features:": the whole text is the term list; a one-feature JSON answer is one term
    assert feature_confidence(['{"features": ', '["fish_eye"]}'], [-0.1, -0.2], TAX) == {"fish_eye": round(math.exp(-0.3), 6)}
    with pytest.raises(ValueError, match="2 tokens but 1 log-probabilities"):
        feature_confidence(["a", "b"], [-0.1], TAX)


def report(**over) -> GeneralistAnswer:
    base = {"fracture_mode": {"text": "Fatigue.", "cites": ["beach_marks"]},
            "mechanism": {"text": "No river patterns here; cyclic bending.", "cites": []},
            "initiation_site": {"text": "At the corner.", "cites": []},
            "image_next": [{"region": "corner", "magnification": "1000x", "purpose": "look for beach marks",
                            "cites": ["beach_marks"]}],
            "caveats": [{"text": "Only one view.", "cites": []}]}
    return GeneralistAnswer(**{**base, **over})


def test_citation_check_ignores_negated_mentions_and_flags_uncited_use():
    evidence = ["river_pattern", "beach_marks"]
    assert check_citations(report(), evidence, TAX) == []  # "No river patterns here" is a negation
    flags = check_citations(report(caveats=[{"text": "The beach marks are faint.", "cites": []}]), evidence, TAX)
    assert [f.model_dump() for f in flags] == [
        {"kind": "uncited_feature", "where": "caveats[0]", "detail": "names 'beach_marks' without citing it"}]


def analysis(**over) -> Analysis:
    spec = {"model": "tiny-ft", "kind": "local", "endpoint": "/ckpt", "raw": "Features: beach_marks, wibble",
            "status": "ok", "features": [{"id": "beach_marks", "name": "beach marks", "confidence": 0.8123}],
            "unknown": ["wibble"], "confidence_source": "local-generate-scores", "latency_s": 0.1,
            "usage": {"input_tokens": 140, "cached_tokens": 0, "output_tokens": 9, "reasoning_tokens": 0}, "cost_usd": 0.0}
    gen = {"model": "gpt-5.5", "endpoint": "https://api.openai.com/v1", "report": report(), "latency_s": 2.0,
           "usage": {"input_tokens": 1000, "cached_tokens": 0, "output_tokens": 300, "reasoning_tokens": 100},
           "cost_usd": 0.004}
    base = {"id": "a" * 64, "image": "x.png", "width": 640, "height": 480, "specialist": spec, "generalist": gen,
            "created": "2026-11-26T10:00:00Z", "fracdata": "0.1.0", "taxonomy_version": 1, "cost_usd": 0.004}
    return Analysis(**{**base, **over})


def test_markdown_report_whole_text():
    assert render_markdown(analysis(context="7075-T6 lug, bending")) == f"""\
# Fractography report: x.png

id `{"a" * 64}` · 640×480 px · 2026-11-26T10:00:00Z · fracdata-analysis v1 · fracdata 0.1.0 · taxonomy v1

## Specialist: tiny-ft (local, /ckpt)

| feature | id | confidence |
|---|---|---|
| beach marks | `beach_marks` | 0.812 |

Answer: `Features: beach_marks, wibble` · unmapped terms: wibble

Confidence: joint probability of each feature's answer tokens (local-generate-scores)

## Generalist: gpt-5.5 (https://api.openai.com/v1)

**Fracture mode.** Fatigue. [cites: beach_marks]

**Mechanism.** No river patterns here; cyclic bending. [no specialist feature]

**Initiation site.** At the corner. [no specialist feature]

**Image next.**

1. corner at 1000x: look for beach marks [cites: beach_marks]

**Caveats.**

- Only one view. [no specialist feature]

## Context given

7075-T6 lug, bending

## Cost

$0.0040 · specialist tokens 140 in / 9 out · generalist tokens 1000 in / 300 out (100 reasoning)
"""


def test_markdown_specialist_only_shows_the_flags():
    a = analysis(generalist=None, cost_usd=0.0, flags=[{"kind": "generalist_missing_key",
                                                         "detail": "specialist findings only: set OPENAI_API_KEY"}])
    md = render_markdown(a)
    assert "**Flags**\n\n- `generalist_missing_key`: specialist findings only: set OPENAI_API_KEY\n" in md
    assert "## Generalist\n\nNo report: specialist findings only (see flags).\n" in md
    assert md.endswith("## Cost\n\n$0.0000 · specialist tokens 140 in / 9 out\n")


def test_watch_log_cuts_a_torn_last_line_and_sums_spend(tmp_path):
    log = tmp_path / "analyses.jsonl"
    log.write_text('{"id": "a", "cost_usd": 0.25}\n{"id": "b", "cost_usd": null}\n{"id": "c", "cos')
    said = []
    # (pixel ids, file hashes, spend): lines from before `file_sha256` named the file in `id`
    assert load_log(log, said.append) == ({"a", "b"}, {"a", "b"}, 0.25)
    assert log.read_text() == '{"id": "a", "cost_usd": 0.25}\n{"id": "b", "cost_usd": null}\n'
    assert said == [f"{log}: cut a torn last line (16 bytes, an interrupted append); that image is analysed again"]
    log.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(FracdataError, match=r"analyses.jsonl:2: not a JSON line"):
        load_log(log)

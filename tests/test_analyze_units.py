"""Pure parts of `fracdata analyze`: per-feature probabilities and the "needs a person" decision,
the citation check, the Markdown report (whole text), the watch log's repair, folder and glob inputs."""

from __future__ import annotations

import math

import pytest

from fracdata.analyze.decide import check_threshold, decision, feature_probabilities, review
from fracdata.analyze.inputs import expand
from fracdata.analyze.report import render_markdown
from fracdata.analyze.schema import Analysis, GeneralistAnswer, check_citations
from fracdata.analyze.watch import load_log
from fracdata.errors import FracdataError
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()


def test_a_feature_is_decided_alone_only_beyond_the_threshold():
    assert [decision(p, 0.9) for p in (0.95, 0.9, 0.89, 0.5, 0.11, 0.1, 0.0)] == \
        ["present", "present", "review", "review", "review", "absent", "absent"]  # 1 - 0.9 = 0.0999...98 still absent
    assert [decision(p, 0.5 + 1e-9) for p in (0.6, 0.5, 0.4)] == ["present", "review", "absent"]
    assert decision(0.999, 1.0) == "review" and decision(1.0, 1.0) == "present"
    for bad in (0.5, 0.2, 1.01):
        with pytest.raises(FracdataError, match=f"--review-threshold {bad}: must be above 0.5 and at most 1"):
            check_threshold(bad)


def test_probabilities_for_every_feature_and_who_must_look():
    lp = {f: math.log(0.001) for f in TAX.ids}
    lp["river_pattern"], lp["mist"] = math.log(0.99), math.log(0.3)
    cal = {f: 0.01 for f in TAX.ids}
    cal["river_pattern"], cal["mist"] = 0.62, 0.95
    probs = feature_probabilities(lp, cal, ["river_pattern"], TAX, 0.9)
    assert [x["id"] for x in probs] == TAX.ids
    by = {x["id"]: x for x in probs}
    assert by["river_pattern"] == {"id": "river_pattern", "name": "river patterns", "probability": 0.62, "score": 0.99,
                                   "listed": True, "decision": "review"}
    assert by["mist"]["decision"] == "present" and not by["mist"]["listed"] and by["mist"]["score"] == 0.3
    assert review(probs, "calibrated", 0.9) == {
        "needs_person": True, "threshold": 0.9, "features": ["river_pattern"],
        "reason": "1 feature(s) between 0.10 and 0.90: river_pattern 0.62"}
    sure = feature_probabilities(lp, {**cal, "river_pattern": 0.97}, ["river_pattern"], TAX, 0.9)
    assert review(sure, "calibrated", 0.9) == {"needs_person": False, "threshold": 0.9, "features": [],
                                               "reason": "every feature's probability is >= 0.90 or <= 0.10"}
    # uncalibrated scores are shown but vouch for nothing; no probabilities at all: always a person
    raw = feature_probabilities(lp, None, ["river_pattern"], TAX, 0.9)
    assert {x["id"]: x["probability"] for x in raw}["river_pattern"] == 0.99
    assert review(raw, "uncalibrated", 0.9)["needs_person"] is True
    assert review(None, "none", 0.9)["reason"].startswith("the specialist gives no per-feature probabilities")


def test_folders_and_patterns_expand_to_their_image_files_each_once(tmp_path, capsys):
    d = tmp_path / "scope"
    (d / "sub").mkdir(parents=True)
    for name in ("b.TIF", "a.png", ".hidden.png", "notes.txt", "sub/c.png"):
        (d / name).write_bytes(b"x")
    said = []
    assert expand([str(d)], said.append) == [d / "a.png", d / "b.TIF"]
    assert said == [f"{d}: reading 2 image files; ignoring 3 other entries (not an image suffix, hidden, or a folder): "
                    ".hidden.png, notes.txt, sub"]
    # a pattern the shell left alone; ** recurses; a file named twice is read once; a missing plain
    # path is passed on (analyze rejects it with its reason)
    assert expand([str(d / "**" / "*.png"), str(d / "a.png"), str(tmp_path / "gone.png")], said.append) == [
        d / "a.png", d / "sub" / "c.png", tmp_path / "gone.png"]
    with pytest.raises(FracdataError, match=r"\*\.jpg: the pattern matches no file"):
        expand([str(d / "*.jpg")])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    said.clear()  # a folder with no image in it is passed on: analyze rejects it with its reason, counted
    assert expand([str(tmp_path / "empty")], said.append) == [tmp_path / "empty"]
    assert said[0].startswith(f"{tmp_path / 'empty'}: a folder with no image files (")


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
            "status": "ok", "features": [{"id": "beach_marks", "name": "beach marks", "probability": 0.8123}],
            "unknown": ["wibble"], "probability_kind": "calibrated", "latency_s": 0.1,
            "probabilities": [{"id": f, "name": TAX.by_id[f].name, "probability": {"beach_marks": 0.8123, "mist": 0.95}.get(f, 0.01),
                               "score": {"beach_marks": 0.99, "mist": 0.2}.get(f, 0.0001), "listed": f == "beach_marks",
                               "decision": {"beach_marks": "review", "mist": "present"}.get(f, "absent")} for f in TAX.ids],
            "calibration": {"file": "/ckpt/calibration.json", "method": "platt-per-feature-shrunk",
                            "fitted_on": "platt-per-feature-shrunk fitted on 306 val images of d"},
            "usage": {"input_tokens": 140, "cached_tokens": 0, "output_tokens": 9, "reasoning_tokens": 0}, "cost_usd": 0.0}
    gen = {"model": "gpt-5.5", "endpoint": "https://api.openai.com/v1", "report": report(), "latency_s": 2.0,
           "usage": {"input_tokens": 1000, "cached_tokens": 0, "output_tokens": 300, "reasoning_tokens": 100},
           "cost_usd": 0.004}
    rev = {"needs_person": True, "threshold": 0.9, "features": ["beach_marks"],
           "reason": "1 feature(s) between 0.10 and 0.90: beach_marks 0.81"}
    base = {"id": "a" * 64, "image": "x.png", "width": 640, "height": 480, "specialist": spec, "generalist": gen,
            "needs_person": True, "review": rev,
            "created": "2026-11-26T10:00:00Z", "fracdata": "0.1.0", "taxonomy_version": 1, "cost_usd": 0.004}
    return Analysis(**{**base, **over})


def test_markdown_report_whole_text():
    assert render_markdown(analysis(context="7075-T6 lug, bending")) == f"""\
# Fractography report: x.png

id `{"a" * 64}` · 640×480 px · 2026-11-26T10:00:00Z · fracdata-analysis v2 · fracdata 0.1.0 · taxonomy v1

**Needs a person** (review threshold 0.90): 1 feature(s) between 0.10 and 0.90: beach_marks 0.81

## Specialist: tiny-ft (local, /ckpt)

Features the answer lists and features that need a person (calibrated probabilities; every feature's in the JSON):

| feature | id | listed | probability | model's score | decision |
|---|---|---|---|---|---|
| beach marks | `beach_marks` | yes | 0.812 | 0.99 | review |
| mist | `mist` | no | 0.950 | 0.2 | present |

Answer: `Features: beach_marks, wibble` · unmapped terms: wibble

Probabilities: calibrated by `/ckpt/calibration.json` (platt-per-feature-shrunk fitted on 306 val images of d)

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

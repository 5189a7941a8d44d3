"""fracdata.answer.parse_answer: every answer shape the benchmark meets, exact outputs."""

from __future__ import annotations

import pytest

from fracdata.answer import Parsed, parse_answer, render_answer
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()

CASES = [
    # the dataset's own format, round-tripped
    ("Features: striation_ductile, beach_marks", Parsed(["striation_ductile", "beach_marks"], [], "ok")),
    ("Features: none", Parsed([], [], "none")),
    ("features: Beach Marks, fatigue-striations.", Parsed(["striation_ductile", "beach_marks"], [], "ok")),
    # empty and malformed
    ("", Parsed([], [], "empty")),
    ("   \n", Parsed([], [], "empty")),
    (None, Parsed([], [], "empty")),
    ("Features:", Parsed([], [], "empty")),
    ("<think>long musing</think>", Parsed([], [], "empty")),
    ("I cannot tell.", Parsed([], ["I cannot tell"], "unparsed")),
    # truncated JSON: the ids it does name are salvaged
    ('{"features": ["cleavage_facet", ', Parsed(["cleavage_facet"], [], "ok")),
    # JSON lists and objects, fenced or in prose
    ('```json\n["Fatigue striations", "beach marks", "blob"]\n```', Parsed(["striation_ductile", "beach_marks"], ["blob"], "ok")),
    ('{"features": ["dimples", "MVC"]}', Parsed(["dimple_equiaxed"], [], "ok")),
    ('{"Labels": []}', Parsed([], [], "none")),
    ("[]", Parsed([], [], "none")),
    ('{"beach marks": true, "chevrons": false}', Parsed(["beach_marks"], [], "ok")),
    ('Answer: {"labels": [{"id": "fish_eye"}, {"name": "mirror", "present": false}]}', Parsed(["fish_eye"], [], "ok")),
    ("Answer: ['dimple', 'shear lips']", Parsed(["dimple_equiaxed", "shear_lip"], [], "ok")),
    ('Features: ["tongues", "river lines"]', Parsed(["river_pattern", "tongues"], [], "ok")),
    # comma / newline / bullet / numbered lists, synonyms, plurals, names containing "and"
    ("- Beach marks\n- cup and cone\n* fatigue zone and final fracture zone", Parsed(["beach_marks", "fatigue_zone_vs_final", "cup_cone"], [], "ok")),
    ("1. Dimples\n2) Tear ridges\n3. rock candy", Parsed(["dimple_equiaxed", "tear_ridge", "ig_facet"], [], "ok")),
    ("Features: cleavage facets and river patterns; clamshell marks", Parsed(["cleavage_facet", "river_pattern", "beach_marks"], [], "ok")),
    ("Features:\n- gas pores\n- lack of fusion", Parsed(["gas_pore", "lack_of_fusion"], [], "ok")),
    ("<think>maybe dimples?</think>Features: tongues", Parsed(["tongues"], [], "ok")),
    # free text naming features; generic words do not count, negations count as unknown terms (issue 24)
    ("The image shows fatigue striations and beach marks near the origin, but no chevron marks.",
     Parsed(["striation_ductile", "beach_marks"], ["no chevron marks"], "ok")),
    ("he said cleavage", Parsed(["cleavage_facet"], [], "ok")),
    ("he said lap", Parsed([], ["he said lap"], "unparsed")),
    ("Signs of HE with some SCC", Parsed(["scc", "he"], [], "ok")),
    ("Features: striations (see [1]), foo bar", Parsed(["striation_ductile"], ["foo bar"], "ok")),
    ("No features visible.", Parsed([], [], "none")),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_parse_answer(text, expected):
    assert parse_answer(text, TAX) == expected


def test_every_rendered_answer_round_trips():
    """What the dataset teaches parses back to exactly its ids, for every feature and pair."""
    for i, fid in enumerate(TAX.ids):
        pair = TAX.sort([fid, TAX.ids[(i + 7) % len(TAX.ids)]])
        for ids in ([fid], pair):
            assert parse_answer(render_answer(ids, TAX), TAX) == Parsed(ids, [], "ok")
    assert parse_answer(render_answer([], TAX), TAX) == Parsed([], [], "none")

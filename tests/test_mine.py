"""`fracdata mine` on JATS articles written here, and the pure parts (licence, filter, panels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracdata.mine.filter import score_figure
from fracdata.licence import allowed, normalise_licence
from fracdata.mine.panels import panel_captions, split_panels
from fracdata.mine.pipeline import Settings, mine
from fracdata.images import image_id
from tests.support.jats_kit import BODY, FIGS, LICENCE_CC_BY, LICENCE_NC, P1, P3, article, write_article
from tests.support.pdfs import grid, texture

def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_pixels(out: Path, expected: dict[str, np.ndarray]) -> dict[str, dict]:
    """Match each manifest record to the expected image with exactly its pixels."""
    found = {}
    for rec in read(out / "manifest.jsonl"):
        path = out / rec["image"]
        assert image_id(path) == rec["id"]  # the id is the pixels' hash
        pixels = np.asarray(Image.open(path))
        names = [k for k, v in expected.items() if v.shape == pixels.shape and np.array_equal(v, pixels)]
        assert len(names) == 1, rec
        found[names[0]] = rec
    return found


def test_jats_article_end_to_end(tmp_path):
    expected = write_article(tmp_path / "papers" / "PMC7654321")
    (tmp_path / "papers" / "notes.txt").write_text("not a source")
    res = mine([str(tmp_path / "papers")], tmp_path / "out", Settings())
    recs = by_pixels(tmp_path / "out", expected)
    assert sorted(recs) == ["Fig. 1", "Fig. 3a", "Fig. 3b", "Fig. 3c", "Fig. 3d"]
    source = {"doi": "10.1016/j.efa.2021.105000", "doi_from": "jats", "title": "Fatigue failure of a 316L shaft",
              "journal": "Engineering Failure Analysis", "year": 2021, "licence": "CC BY 4.0",
              "url": "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7654321/", "file": "papers/PMC7654321/article.nxml"}
    r1 = recs["Fig. 1"]
    assert r1 == {"id": r1["id"], "image": f"images/{r1['id']}.png", "source": {**source, "figure": "Fig. 1"},
                  "caption": "SEM fractograph of the fatigue fracture surface.", "excerpts": [P1, P3]}
    captions = {"a": "(a) origin", "b": "(b) striations", "c": "(c) dimples", "d": "(d) shear lip."}
    for p, text in captions.items():
        r = recs[f"Fig. 3{p}"]
        assert r == {"id": r["id"], "image": f"images/{r['id']}.png",
                     "source": {**source, "figure": "Fig. 3", "panel": p},
                     "caption": f"Overload zone. {text}", "excerpts": [P3]}
    manifest_order = [(r["source"]["figure"], r["source"].get("panel")) for r in read(tmp_path / "out" / "manifest.jsonl")]
    assert manifest_order == [("Fig. 1", None), ("Fig. 3", "a"), ("Fig. 3", "b"), ("Fig. 3", "c"), ("Fig. 3", "d")]
    rejects = read(tmp_path / "out" / "rejects.jsonl")
    assert rejects == [
        {"stage": "mine", "file": "papers/PMC7654321/article.nxml", "reason": "missing_graphic",
         "detail": "Fig. 4: graphic 'g4' not found next to article.nxml"},
        {"stage": "mine", "file": "papers/PMC7654321/article.nxml", "reason": "not_fracture",
         "detail": "Fig. 2: score -2: plot (caption) -2 < 3"},
    ]
    evidence = {e["id"]: e for e in read(tmp_path / "out" / "evidence.jsonl")}
    assert evidence[r1["id"]] == {
        "id": r1["id"], "file": "papers/PMC7654321/article.nxml", "figure": "Fig. 1", "panel": None, "score": 11.5,
        "evidence": [{"term": "fracture surface", "weight": 3.0, "where": "caption", "text": "fracture surface"},
                     {"term": "fractograph", "weight": 3.0, "where": "caption", "text": "fractograph"},
                     {"term": "dimple", "weight": 1.0, "where": "excerpt 2", "text": "dimples"},
                     {"term": "beach mark", "weight": 1.0, "where": "excerpt 1", "text": "beach marks"},
                     {"term": "SEM", "weight": 1.0, "where": "caption", "text": "SEM"},
                     {"term": "fracture", "weight": 1.0, "where": "caption", "text": "fracture"},
                     {"term": "fatigue", "weight": 1.0, "where": "caption", "text": "fatigue"},
                     {"term": "ductile/brittle", "weight": 0.5, "where": "excerpt 2", "text": "ductile"}]}
    c = res.counts
    assert (len(res.sources), res.other_files, c["figures"], c["passed"], c["images"], c["kept"]) == (1, 4, 4, 2, 5, 5)
    assert dict(res.reasons) == {"missing_graphic": 1, "not_fracture": 1}
    # without panel splitting, Fig. 3 is one record with the whole caption
    mine([str(tmp_path / "papers")], tmp_path / "whole", Settings(panels=False))
    whole = read(tmp_path / "whole" / "manifest.jsonl")
    assert [(r["source"]["figure"], r["source"].get("panel"), r["caption"]) for r in whole] == [
        ("Fig. 1", None, "SEM fractograph of the fatigue fracture surface."),
        ("Fig. 3", None, "Overload zone. (a) origin; (b) striations; (c) dimples and (d) shear lip.")]


def test_licence_gate_counts_by_licence(tmp_path):
    write_article(tmp_path / "papers" / "open", LICENCE_CC_BY)
    write_article(tmp_path / "papers" / "nc", LICENCE_NC)
    for name, perms in (("closed", "<license><license-p>All rights reserved.</license-p></license>"), ("none", "")):
        (tmp_path / "papers" / name).mkdir()
        (tmp_path / "papers" / name / "article.nxml").write_text(article(perms, FIGS, BODY))
        for f in ("g1.jpg", "g2.png", "g3.png"):
            (tmp_path / "papers" / name / f).write_bytes((tmp_path / "papers" / "open" / f).read_bytes())
    res = mine([str(tmp_path / "papers")], tmp_path / "out", Settings())
    # 'open' keeps 5 images; the other three refuse Figs. 1-3 each (Fig. 4 has no graphic file anywhere)
    assert res.counts["kept"] == 5
    assert dict(res.licences) == {"CC BY-NC-ND 4.0": 3, "unrecognised": 3, "none stated": 3}
    lic = [r["detail"] for r in read(tmp_path / "out" / "rejects.jsonl") if r["reason"] == "licence_not_allowed"]
    assert lic == [f"Fig. {i}: {x}" for x in ("unrecognised (stated: All rights reserved.)", "CC BY-NC-ND 4.0",
                                               "none stated") for i in (1, 2, 3)]
    # --allow-any-licence: the same figures pass, and their copies of 'open' are duplicate images
    res = mine([str(tmp_path / "papers")], tmp_path / "any", Settings(allow_any_licence=True))
    assert res.counts["kept"] == 5 and res.reasons["duplicate_image"] == 15 and not res.licences


def test_malformed_and_foreign_xml_are_source_rejects(tmp_path):
    (tmp_path / "bad.nxml").write_text("<article><front>")
    (tmp_path / "other.xml").write_text("<rss><channel/></rss>")
    res = mine([str(tmp_path / "bad.nxml"), str(tmp_path / "other.xml")], tmp_path / "out", Settings())
    rejects = read(tmp_path / "out" / "rejects.jsonl")
    assert [(r["file"], r["reason"]) for r in rejects] == [("bad.nxml", "malformed_xml"), ("other.xml", "not_jats")]
    assert rejects[1]["detail"] == "root element is <rss>, not <article>"
    assert res.levels["source"] == 2 and res.counts["kept"] == 0


def test_jats_metadata_from_efetch_wrapper_with_ali_licence(tmp_path):
    from fracdata.mine.jats import parse_jats

    perms = ('<license xmlns:ali="http://www.niso.org/schemas/ali/1.0/"><ali:license_ref>'
             "https://creativecommons.org/licenses/by-nc/4.0/</ali:license_ref></license>")
    xml = article(perms, "", "<p>No figures.</p>").split("\n", 2)[2]  # drop the XML declaration and DOCTYPE
    (tmp_path / "a.xml").write_text(f"<pmc-articleset>{xml}</pmc-articleset>")
    art = parse_jats(tmp_path / "a.xml")
    assert (art.doi, art.title, art.journal, art.year, art.licence, art.url, art.figures, art.rejects) == (
        "10.1016/j.efa.2021.105000", "Fatigue failure of a 316L shaft", "Engineering Failure Analysis", 2021,
        "CC BY-NC 4.0", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7654321/", [], [])


@pytest.mark.parametrize("text, expected", [
    ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0"),
    ("http://creativecommons.org/licenses/by-nc-nd/3.0/igo", "CC BY-NC-ND 3.0"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0"),
    ("https://creativecommons.org/licenses/by-sa/4", "CC BY-SA 4.0"),
    ("an open access article under the CC BY-NC-ND license", "CC BY-NC-ND"),
    ("Creative Commons Attribution 4.0 International License", "CC BY 4.0"),
    ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International", "CC BY-NC-SA 4.0"),
    ("Creative Commons Attribution-NoDerivs License", "CC BY-ND"),
    ("licensed under cc-by-sa 3.0", "CC BY-SA 3.0"),
    ("released under CC0", "CC0 1.0"),
    ("© 2020 Elsevier Ltd. All rights reserved.", None),
])
def test_normalise_licence(text, expected):
    assert normalise_licence(text) == expected


def test_licence_allow_list():
    assert [allowed(x) for x in ("CC BY 4.0", "CC BY-SA", "CC0 1.0", "CC BY-NC 4.0", "CC BY-ND", None)] == \
        [True, True, True, False, False, False]
    # a URL beats prose that mentions another licence
    assert normalise_licence("unlike CC BY-NC articles", "https://creativecommons.org/licenses/by/4.0/") == "CC BY 4.0"


@pytest.mark.parametrize("caption, excerpts, score, keep", [
    ("SEM fractograph.", [], 4.0, True),
    ("SEM image of the dimples.", [], 3.0, True),
    ("SEM image of the specimen.", [], 1.0, False),
    ("Geometry of the fracture toughness specimen.", [], -1.0, False),
    # excerpt evidence counts half: 1.5 + 1 + 0.5 keeps, 2 * 0.5 alone does not
    ("Overview of the part.", ["Cleavage facets cover the fracture surface (Fig. 2)."], 3.0, True),
    ("Overview of the part.", ["Cleavage facets (Fig. 2)."], 1.0, False),
    ("Schematic of the fracture surface.", [], 1.0, False),
])
def test_filter_scores(caption, excerpts, score, keep):
    v = score_figure(caption, excerpts)
    assert (v.score, v.keep) == (score, keep), v.describe()


def test_panel_captions():
    assert panel_captions("Fig. 2. Fatigue of 316L: (a) origin; (b) striations, and (c) dimples.") == {
        "a": "Fig. 2. Fatigue of 316L: (a) origin", "b": "Fig. 2. Fatigue of 316L: (b) striations",
        "c": "Fig. 2. Fatigue of 316L: (c) dimples."}
    assert panel_captions("(a, b) overview; (c) detail") == {"a": "(a, b) overview", "b": "(a, b) overview",
                                                            "c": "(c) detail"}
    assert panel_captions("Fig. 4. a Overview of the surface. b Detail of the origin.") == {
        "a": "Fig. 4. a Overview of the surface.", "b": "Fig. 4. b Detail of the origin."}
    assert panel_captions("SEM of a Ti alloy, see (b) below") == {}  # marks must run a, b, ...
    assert panel_captions("(a) one; (c) three") == {}


def test_split_panels_grid_with_letters_in_gutters():
    from PIL import ImageDraw

    panels = [texture(i, (150, 100)) for i in range(6)]
    sheet = Image.new("L", (478, 14 + 214), 255)  # a 14 px white band on top, for the letters
    sheet.paste(grid(panels, cols=3, gutter=14), (0, 14))
    draw = ImageDraw.Draw(sheet)
    for i in range(6):  # a letter above each panel must stay with its panel, not become one
        draw.text(((i % 3) * 164 + 2, (i // 3) * 114 + 2), "abcdef"[i], fill=0)
    boxes = split_panels(sheet)
    assert [(b[0], b[2], b[3]) for b in boxes] == [(0, 150, 114), (164, 314, 114), (328, 478, 114),
                                                   (0, 150, 228), (164, 314, 228), (328, 478, 228)]
    # each box starts at its letter, 0-12 px above the panel
    assert all(0 < top - b[1] <= 12 for b, top in zip(boxes, [14] * 3 + [128] * 3)), boxes
    assert split_panels(texture(0, (300, 200))) == [(0, 0, 300, 200)]


def test_rerun_replaces_a_truncated_image_left_by_a_killed_run(tmp_path):
    write_article(tmp_path / "papers" / "PMC1")
    out = tmp_path / "out"
    mine([str(tmp_path / "papers")], out, Settings())
    rec = read(out / "manifest.jsonl")[0]
    path = out / rec["image"]
    path.write_bytes(path.read_bytes()[:100])  # killed mid-write: a truncated <sha>.png ...
    for state in (out / ".state").iterdir():  # ... and no done marker for its source
        state.unlink()
    (out / "images" / f".{rec['id']}.png.999.1.tmp").write_bytes(b"half")  # a killed atomic write
    mine([str(tmp_path / "papers")], out, Settings())
    for r in read(out / "manifest.jsonl"):
        assert image_id(out / r["image"]) == r["id"]
    assert not list((out / "images").glob(".*.tmp"))


def test_merge_names_file_and_line_of_a_malformed_evidence_line(tmp_path):
    from fracdata.errors import FracdataError
    from fracdata.mine.merge import merge

    write_article(tmp_path / "papers" / "PMC1")
    mine([str(tmp_path / "papers")], tmp_path / "shard", Settings())
    evidence = tmp_path / "shard" / "evidence.jsonl"
    lines = evidence.read_text().splitlines()
    evidence.write_text("\n".join([lines[0], '{"id": "abc", "score": 1', *lines[1:]]) + "\n")
    with pytest.raises(FracdataError) as e:
        merge([str(tmp_path / "shard")], tmp_path / "all")
    msg = str(e.value)
    assert msg.startswith(f"{evidence}:2: malformed evidence line") and "\n" not in msg
    evidence.write_text("\n".join([lines[0], "[1, 2]"]) + "\n")
    with pytest.raises(FracdataError, match=r"evidence.jsonl:2: .*string \"id\""):
        merge([str(tmp_path / "shard")], tmp_path / "all")

"""`fracdata mine` on papers that look like the literature (`fracdata synth --papers`, issue 23):
the article's own DOI beside a bibliography full of DOIs, licences wherever JATS puts them,
and every panel of 2x2 / 2x3 / 4x2 figures with white or dark gutters and unlabelled titles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracdata.mine.accuracy import iou, locate
from fracdata.mine.jats import parse_jats
from fracdata.mine.pdf import parse_pdf
from fracdata.mine.pipeline import Settings, mine
from fracdata.synth.papers import build_paper, write_paper
from fracdata.synth.papertext import PLACEHOLDER_REF


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def paper(tmp_path: Path, fmt: str = "pdf", doi_at: str = "footer", licence_at: str = "footer", seed: int = 1,
          short: bool = False, figures: list[dict] | None = None) -> dict:
    """One synthetic paper written under tmp_path/papers; returns its truth (truth.jsonl's line)."""
    rng = np.random.default_rng(seed)
    if figures is None:  # a letter: one fractograph; a paper: a sheet and a fractograph, its references on page 2+
        figures = [{"layout": "single"}] if short else [{"layout": "grid", "grid": (2, 3)}, {"layout": "single"}]
    p = build_paper(rng, seed, fmt, doi_at, licence_at, short=short, figures=figures)
    truth = write_paper(tmp_path / "papers", p)
    truth["reference_dois"] = [r["doi"].lower() for r in p["reference_records"] if r["doi"]]
    return truth


@pytest.mark.parametrize("doi_at, short, doi_from", [
    ("footer", False, "first_page"), ("header", False, "first_page"), ("metadata", False, "metadata"),
    ("subject", False, "metadata"), ("xmp", False, "xmp"), ("link", False, "first_page"),
    ("crossmark", False, "first_page"), ("none", False, "none"), ("placeholder", False, "none"),
    # a letter: its references (DOIs, links) on page 1 itself
    ("footer", True, "first_page"), ("none", True, "none"), ("link", True, "first_page"),
])
def test_a_pdf_whose_references_hold_dois_gives_its_own_doi_or_none(tmp_path, doi_at, short, doi_from):
    truth = paper(tmp_path, doi_at=doi_at, short=short)
    assert truth["reference_dois"] and (truth["references_page"] == 1) == short
    art = parse_pdf(tmp_path / "papers" / truth["file"])
    assert (art.doi, art.doi_from) == (truth["doi"], doi_from)
    assert (truth["doi"] is None) == (doi_at in ("none", "placeholder"))
    assert art.doi not in truth["reference_dois"]


def test_the_placeholder_of_reference_3_is_never_the_papers_doi(tmp_path):
    """The real PDF whose every record got `10.1109/access.2024.000000`: its own DOI only in XMP,
    the placeholder in reference [3], another DOI first in the references."""
    from reportlab.pdfgen import canvas

    from tests.support.pdfs import texture

    c = canvas.Canvas(str(tmp_path / "ieee.pdf"), pagesize=(595, 842), invariant=1)
    c.setFont("Helvetica", 9)
    c.drawString(60, 780, "This work is licensed under a Creative Commons Attribution 4.0 License.")
    from reportlab.lib.utils import ImageReader

    c.drawImage(ImageReader(texture(3, (300, 200))), 60, 500, width=300, height=200)
    c.drawString(60, 480, "Fig. 1. SEM fractograph of the fatigue fracture surface.")
    c.drawString(60, 400, "References")
    c.drawString(60, 385, "[1] A. Rossi, Fatigue of welds, Int. J. Fatigue 12 (2019) 1. https://doi.org/10.1016/j.ijfatigue.2019.105123")
    c.drawString(60, 373, "[2] B. Chen, Cracks, Metals 3 (2020) 4. doi:10.3390/met10010004")
    c.drawString(60, 361, "[3] C. Kim, Deep fractography, IEEE Access 12 (2024) 1. doi: 10.1109/ACCESS.2024.000000")
    c.showPage()
    c.save()
    res = mine([str(tmp_path / "ieee.pdf")], tmp_path / "none", Settings())
    recs = read(tmp_path / "none" / "manifest.jsonl")
    assert res.counts["kept"] == 1 and [r["source"].get("doi") for r in recs] == [None]
    assert recs[0]["source"]["doi_from"] == "none" and recs[0]["source"]["licence"] == "CC BY 4.0"


@pytest.mark.parametrize("licence_at, licence", [
    ("license_href", "CC BY 4.0"), ("license_p", "CC BY"), ("ali", "CC BY 4.0"), ("copyright", "CC BY"),
    ("copyright_outside", "CC BY"), ("license_outside", "CC BY 3.0"), ("nc", "CC BY-NC-ND 4.0"), ("none", None),
])
def test_jats_licence_wherever_it_sits_and_never_a_figures_own(tmp_path, licence_at, licence):
    truth = paper(tmp_path, fmt="jats", doi_at="article_id", licence_at=licence_at)
    assert truth["licence"] == licence
    art = parse_jats(tmp_path / "papers" / truth["file"])
    assert (art.licence, art.doi, art.doi_from) == (licence, truth["doi"], "jats")


def test_a_copyright_statement_outside_permissions_keeps_the_figures(tmp_path):
    """PLoS ONE 2007 (NLM 2.x): CC BY stated only in a <copyright-statement> straight in
    <article-meta>, no <permissions> at all; it was refused as `licence_not_allowed: none stated`.
    The first figure carries figure-level CC BY-NC-ND permissions, which are not the article's."""
    truth = paper(tmp_path, fmt="jats", doi_at="article_id", licence_at="copyright_outside",
                  figures=[{"layout": "single"}, {"layout": "grid", "grid": (2, 2)}])
    xml = (tmp_path / "papers" / truth["file"]).read_text()
    assert "<permissions>" not in xml.split("<fig ")[0] and "<copyright-statement>" in xml.split("<fig ")[0]
    res = mine([str(tmp_path / "papers" / "jats")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    assert res.counts["kept"] == 5 and not res.licences
    assert {(r["source"]["licence"], r["source"]["doi"], r["source"]["doi_from"]) for r in recs} == {
        ("CC BY", truth["doi"], "jats")}


def _panels_match(recs: list[dict], out: Path, truth_image: np.ndarray, boxes: list) -> list[float]:
    """IoU of each record's place in the figure's image with the true panel box, in order."""
    ious = []
    for rec, box in zip(recs, boxes):
        found = locate(np.asarray(Image.open(out / rec["image"]).convert("L"), np.float32), truth_image)
        assert found is not None and found[0] > 0.95
        ious.append(iou(found[1], box))
    return ious


@pytest.mark.parametrize("fmt, grid, dark, letters, titles", [
    ("pdf", (2, 2), False, "drawn", False),   # white gutters, letters drawn on the panels
    ("pdf", (2, 3), True, "drawn", False),    # thin dark gutters
    ("jats", (2, 3), True, "none", False),    # dark gutters, no letters anywhere
    ("pdf", (2, 4), False, "none", True),     # panel titles above the panels, unlabelled
])
def test_every_panel_of_a_grid_with_the_figures_caption(tmp_path, fmt, grid, dark, letters, titles):
    fig = {"layout": "grid", "grid": grid, "dark": dark, "letters": letters, "titles": titles, "bar": "dark",
           "jpeg": fmt == "jats", "marks": False}
    truth = paper(tmp_path, fmt=fmt, doi_at="footer" if fmt == "pdf" else "article_id",
                  licence_at="footer" if fmt == "pdf" else "license_href", figures=[fig])
    res = mine([str(tmp_path / "papers" / fmt)], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    (tf,) = truth["figures"]
    n = grid[0] * grid[1]
    assert tf["gutter"] == ("dark" if dark else "white") and len(tf["images"][0]["panels"]) == n
    assert (res.counts["kept"], [r["source"].get("panel") for r in recs]) == (n, list("abcdefgh"[:n]))
    assert {r["caption"] for r in recs} == {tf["caption"]}  # each keeps the figure's caption
    image = np.asarray(Image.open(tmp_path / "papers" / tf["images"][0]["file"]).convert("L"), np.float32)
    boxes = [p["box"] for p in tf["images"][0]["panels"]]
    assert min(_panels_match(recs, tmp_path / "out", image, boxes)) > (0.85 if titles else 0.95)


def test_a_pdf_figure_of_8_images_under_unlabelled_panel_titles(tmp_path):
    """Eight images, one per panel, in 4 rows, a title above each and no letters; the caption
    under the last row. It was rejected `no_caption` (the top rows are far from the caption and
    the titles of the rows below stood in between)."""
    fig = {"layout": "images", "grid": (4, 2), "titles": True, "letters": "none", "marks": False}
    truth = paper(tmp_path, figures=[fig])
    res = mine([str(tmp_path / "papers" / "pdf")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    (tf,) = truth["figures"]
    titles = [im["panels"][0]["title"] for im in tf["images"]]
    assert res.counts["kept"] == 8 and read(tmp_path / "out" / "rejects.jsonl") == []
    assert [r["caption"] for r in recs] == [f"{tf['caption']} {t}" for t in titles]
    assert {r["source"]["figure"] for r in recs} == {"Fig. 1"} and all("panel" not in r["source"] for r in recs)
    for rec, im in zip(recs, tf["images"]):  # each image is its own panel, pixel for pixel, in reading order
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / rec["image"])),
                              np.asarray(Image.open(tmp_path / "papers" / im["file"])))


@pytest.mark.parametrize("letters", ["subcaptions", "text"])
def test_one_image_per_panel_named_by_its_sub_caption_or_the_letter_on_it(tmp_path, letters):
    fig = {"layout": "images", "grid": (2, 2), "titles": False, "letters": letters, "marks": True}
    truth = paper(tmp_path, figures=[fig])
    mine([str(tmp_path / "papers" / "pdf")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    (tf,) = truth["figures"]
    assert [r["source"]["panel"] for r in recs] == list("abcd")
    lead = tf["caption"].split(" (a) ")[0]
    assert all(r["caption"].startswith(lead) for r in recs)
    if letters == "text":  # the caption's own part for each panel: "lead (b) what b shows"
        assert [r["caption"].split(" (")[1][0] for r in recs] == list("abcd")


def test_synth_papers_command_writes_papers_and_their_truth(tmp_path, capsys):
    from fracdata.cli import main

    out = tmp_path / "papers"
    assert main(["synth", "--papers", "3", "--out", str(out), "--seed", "4"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"synth: wrote 3 papers (2 PDF in {out}/pdf/, 1 JATS in {out}/jats/) with ")
    assert printed[1] == "  own DOI at: article_id 1, footer 1, header 1"
    truths = read(out / "truth.jsonl")
    assert [t["file"] for t in truths] == ["pdf/paper0000.pdf", "pdf/paper0001.pdf", "jats/paper0002/article.nxml"]
    for t in truths:
        assert (out / t["file"]).is_file()
        assert all((out / im["file"]).is_file() for f in t["figures"] for im in f["images"])
    first = (out / "truth.jsonl").read_bytes()
    assert main(["synth", "--papers", "3", "--out", str(out), "--seed", "4"]) == 0  # same seed, same papers
    assert (out / "truth.jsonl").read_bytes() == first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["synth", "--papers", "1", "--out", str(tmp_path / "mine")]) == 2
    assert "holds no papers.json; refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    assert main(["synth", "--papers", "2", "--n", "10", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == ("error: synth --papers: --n is for the image corpus; --papers takes --out and "
                                       "--seed\n")
    assert main(["synth", "--papers", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--papers must be >= 1" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_the_scorer_counts_a_lost_panel_and_a_stray_image(tmp_path):
    """mine_accuracy's figures can fail: a panel dropped from the manifest lowers panel recall, a
    record of a figure that is not expected (a plot) lowers figure and panel precision."""
    from fracdata.mine.accuracy import score

    truth = paper(tmp_path, figures=[{"layout": "grid", "grid": (2, 2), "dark": False, "marks": False},
                                     {"layout": "plot"}])
    (tmp_path / "papers" / "truth.jsonl").write_text(json.dumps(truth) + "\n")
    mine([str(tmp_path / "papers" / "pdf")], tmp_path / "out", Settings())
    articles = {truth["file"]: (truth["doi"], truth["licence"])}
    r = score(tmp_path / "papers" / "truth.jsonl", tmp_path / "out", articles)["rates"]
    assert (r["figure_recall"], r["figure_precision"], r["panel_recall"], r["panel_precision"]) == (1, 1, 1, 1)
    recs = read(tmp_path / "out" / "manifest.jsonl")
    stray = {**recs[0], "source": {**recs[0]["source"], "figure": "Fig. 2"}}  # as if the plot were kept
    (tmp_path / "out" / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs[1:] + [stray]))
    r = score(tmp_path / "papers" / "truth.jsonl", tmp_path / "out", {truth["file"]: (PLACEHOLDER_REF, None)})
    assert r["figure"]["mined"] == 2 and r["rates"]["figure_precision"] == 0.5
    assert (r["rates"]["panel_recall"], r["rates"]["panel_precision"]) == (0.75, 0.75)
    assert (r["doi"]["wrong"], r["licence"]["wrong"]) == (1, 1)


def test_a_caption_wrapped_at_a_panel_mark_stays_one_caption(tmp_path):
    """A caption whose second line starts "(c) ..." was cut in two: its first line the caption,
    "(c) ..." a sub-caption that named the whole 2x2 sheet panel c (one record instead of four)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from tests.support.pdfs import grid, texture

    c = canvas.Canvas(str(tmp_path / "wrap.pdf"), pagesize=(595, 842), invariant=1)
    c.setFont("Helvetica", 9)
    c.drawString(60, 790, "Open access under the CC BY license (http://creativecommons.org/licenses/by/4.0/).")
    c.drawImage(ImageReader(grid([texture(20 + k, (160, 120)) for k in range(4)], cols=2, gutter=8)), 60, 480,
                width=330, height=248)
    c.drawString(60, 465, "Fig. 2. SEM fractographs of the overload zone: (a) dimples; (b) shear lip;")
    c.drawString(60, 454, "(c) cleavage facets; (d) tearing ridges.")
    c.showPage()
    c.save()
    mine([str(tmp_path / "wrap.pdf")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    lead = "Fig. 2. SEM fractographs of the overload zone:"
    assert [(r["source"]["panel"], r["caption"]) for r in recs] == [
        ("a", f"{lead} (a) dimples"), ("b", f"{lead} (b) shear lip"), ("c", f"{lead} (c) cleavage facets"),
        ("d", f"{lead} (d) tearing ridges.")]


def test_a_heading_right_above_a_single_figure_is_not_its_title(tmp_path):
    """Short text just above an image is a panel title only for a figure of several panels: a
    section heading over a one-image figure stays out of its caption."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from tests.support.pdfs import texture

    c = canvas.Canvas(str(tmp_path / "heading.pdf"), pagesize=(595, 842), invariant=1)
    c.setFont("Helvetica", 9)
    c.drawString(60, 790, "Open access under the CC BY license (http://creativecommons.org/licenses/by/4.0/).")
    c.drawString(60, 735, "3. Results")
    c.drawImage(ImageReader(texture(5, (300, 200))), 60, 530, width=300, height=200)
    c.drawString(60, 515, "Fig. 4. SEM fractograph of the fatigue fracture surface.")
    c.showPage()
    c.save()
    mine([str(tmp_path / "heading.pdf")], tmp_path / "out", Settings())
    assert [r["caption"] for r in read(tmp_path / "out" / "manifest.jsonl")] == [
        "Fig. 4. SEM fractograph of the fatigue fracture surface."]


def test_a_caption_at_the_foot_of_a_page_does_not_run_into_the_next_pages_header(tmp_path):
    """Blocks never span pages: the running header at the top of page 2 was read as the end of
    the caption at the foot of page 1."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from tests.support.pdfs import texture

    c = canvas.Canvas(str(tmp_path / "foot.pdf"), pagesize=(595, 842), invariant=1)
    c.setFont("Helvetica", 9)
    c.drawString(60, 790, "Open access under the CC BY license (http://creativecommons.org/licenses/by/4.0/).")
    c.drawImage(ImageReader(texture(6, (300, 200))), 60, 90, width=300, height=200)
    c.drawString(60, 75, "Fig. 1. SEM fractograph of the fatigue fracture surface.")
    c.showPage()
    c.setFont("Helvetica", 9)
    c.drawString(60, 800, "A. Rossi et al. / Engineering Failure Analysis 105 (2019) 105123")
    c.showPage()
    c.save()
    mine([str(tmp_path / "foot.pdf")], tmp_path / "out", Settings())
    assert [r["caption"] for r in read(tmp_path / "out" / "manifest.jsonl")] == [
        "Fig. 1. SEM fractograph of the fatigue fracture surface."]

"""`fracdata mine` on what real papers do: a page pypdf cannot parse, panels with their own
sub-captions, a licence stated only in <copyright-statement>, figure files supplied after a
first run, and an archive's per-article .tar.gz packages."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracdata.cli import main
from fracdata.images import image_id
from fracdata.mine.jats import parse_jats
from fracdata.mine.pipeline import Settings, mine
from tests.support.pdfs import texture
from tests.support.jats_kit import BODY, FIGS, LICENCE_CC_BY, article, write_article

LICENCE_TEXT = ("This is an open access article under the CC BY license "
                "(http://creativecommons.org/licenses/by/4.0/).")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _canvas(path):
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=(595, 842), invariant=1)
    c.setFont("Helvetica", 9)
    return c


def _image(c, im, x, y, w, h):
    from reportlab.lib.utils import ImageReader

    c.drawImage(ImageReader(im), x, y, width=w, height=h)


def test_a_page_over_a_pypdf_limit_costs_that_page_not_the_paper(tmp_path, capsys):
    """A real 29-page report was rejected whole (`corrupt_pdf`) because one page's content
    stream hit pypdf's token limit. pypdf's own limit is lowered here (its public
    `apply_configuration`) so that a small vector drawing reaches it the same way."""
    import pypdf

    c = _canvas(tmp_path / "report.pdf")
    c.drawString(60, 800, LICENCE_TEXT)
    _image(c, texture(1, (300, 200)), 60, 450, 300, 200)
    c.drawString(60, 430, "Fig. 1. SEM fractograph of the fatigue fracture surface.")
    c.showPage()
    path = c.beginPath()  # page 2: a dense plot, ~15,000 content-stream tokens
    path.moveTo(60, 400)
    for i in range(5000):
        path.lineTo(60 + (i * 7) % 470, 400 + (i * 13) % 300)
    c.drawPath(path)
    c.drawString(60, 380, "Fig. 2. Crack growth rate curves.")
    c.showPage()
    _image(c, texture(2, (300, 200)), 60, 450, 300, 200)
    c.drawString(60, 430, "Fig. 3. Fracture surface showing ductile dimples.")
    c.showPage()
    c.save()

    out = tmp_path / "out"
    with pypdf.apply_configuration(stream_parsing_work_maximum_count=10_000):
        assert main(["mine", str(tmp_path / "report.pdf"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:7] == [
        "  sources  1 = 1 parsed + 0 rejected",
        "  pages    3 read = 2 parsed + 1 rejected",
        "  figures  2 found = 2 passed + 0 rejected",
        "  images   2 cut from 2 figures = 2 kept + 0 rejected",
        "  kept 2 + rejected 1 = 3 candidates",
        "  rejects by reason: unreadable_page 1",
    ]
    assert [(r["source"]["figure"], r["source"]["page"]) for r in read(out / "manifest.jsonl")] == [
        ("Fig. 1", 1), ("Fig. 3", 3)]
    assert read(out / "rejects.jsonl") == [{
        "stage": "mine", "file": "report.pdf", "reason": "unreadable_page",
        "detail": "page 2: LimitReachedError: Reached maximum number of tokens per stream."}]
    # with pypdf's default limits the same page parses (its drawing holds no image): nothing lost
    res = mine([str(tmp_path / "report.pdf")], tmp_path / "default", Settings())
    assert (res.counts["kept"], read(tmp_path / "default" / "rejects.jsonl")) == (2, [])


def test_panels_with_sub_captions_between_images_and_caption(tmp_path):
    """Side-by-side panels, each with its own sub-caption, above the "Figure 1:" caption (the
    layout that was split into panels rejected as `no_caption`); and stacked panels carrying
    bare letters."""
    a, b = texture(11, (240, 180)), texture(12, (240, 180))
    top, bottom = texture(13, (320, 120)), texture(14, (320, 120))
    c = _canvas(tmp_path / "slm.pdf")
    c.drawString(60, 810, LICENCE_TEXT)
    _image(c, a, 60, 560, 220, 165)
    _image(c, b, 315, 560, 220, 165)
    c.drawString(100, 545, "(a) SLM Ti-6Al-4V specimen")
    c.drawString(355, 545, "(b) Wrought Ti-6Al-4V specimen")
    c.drawString(60, 520, "Figure 1: SEM fractographs of the fatigue fracture surfaces of the two specimens,")
    c.drawString(60, 509, "crack origins marked by arrows.")
    c.drawString(60, 480, "As Figure 1 shows, both specimens failed from surface pores.")
    _image(c, top, 60, 300, 320, 120)
    c.drawString(215, 288, "a")
    _image(c, bottom, 60, 160, 320, 120)
    c.drawString(215, 148, "b")
    c.drawString(60, 125, "Figure 2: Fracture surface of the overload zone with dimples.")
    c.showPage()
    c.save()

    mine([str(tmp_path / "slm.pdf")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    cap1 = ("Figure 1: SEM fractographs of the fatigue fracture surfaces of the two specimens, "
            "crack origins marked by arrows.")
    cap2 = "Figure 2: Fracture surface of the overload zone with dimples."
    assert [(r["source"]["figure"], r["source"].get("panel"), r["caption"]) for r in recs] == [
        ("Figure 1", "a", f"{cap1} (a) SLM Ti-6Al-4V specimen"),
        ("Figure 1", "b", f"{cap1} (b) Wrought Ti-6Al-4V specimen"),
        ("Figure 2", "a", f"{cap2} a"),
        ("Figure 2", "b", f"{cap2} b"),
    ]
    assert recs[0]["excerpts"] == ["As Figure 1 shows, both specimens failed from surface pores."]
    for rec, im in zip(recs, (a, b, top, bottom)):  # each panel is its own image, pixel for pixel
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / rec["image"])), np.asarray(im))
    assert read(tmp_path / "out" / "rejects.jsonl") == []


HINDAWI = ("Copyright © 2009 A. Author et al. This is an open access article distributed under the Creative "
           "Commons Attribution License, which permits unrestricted use, distribution, and reproduction in any "
           "medium, provided the original work is properly cited.")
# PLOS Medicine 2005, e402 (allofplos starter corpus), verbatim
PLOS_PD = ("This is an open-access article distributed under the terms of the Creative Commons Public Domain "
           "Declaration, which stipulates that, once placed in the public domain, this work may be freely "
           "reproduced, distributed, transmitted, modified, built upon, or otherwise used by anyone for any "
           "lawful purpose.")
ALI = 'xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'


@pytest.mark.parametrize("permissions, licence", [
    (f"<copyright-statement>{HINDAWI}</copyright-statement><copyright-year>2009</copyright-year>", "CC BY"),
    ('<copyright-statement>© 2012 The Authors. Published under <ext-link ext-link-type="uri" '
     'xlink:href="http://creativecommons.org/licenses/by/3.0/">this licence</ext-link>.</copyright-statement>', "CC BY 3.0"),
    (f"<license><license-p>{PLOS_PD}</license-p></license>", "PDM"),
    (f'<ali:license_ref {ALI}>https://creativecommons.org/publicdomain/zero/1.0/</ali:license_ref>', "CC0 1.0"),
    # the licence URL wins over a copyright statement that names the publisher only
    (f'<copyright-statement>© 2021 Elsevier Ltd.</copyright-statement>{LICENCE_CC_BY}', "CC BY 4.0"),
    ('<copyright-statement>© 2020 Elsevier Ltd. All rights reserved.</copyright-statement>', None),
])
def test_licence_read_wherever_jats_puts_it(tmp_path, permissions, licence):
    (tmp_path / "a.nxml").write_text(article(permissions, "", "<p>Text.</p>"))
    assert parse_jats(tmp_path / "a.nxml").licence == licence


def test_copyright_statement_licence_keeps_the_figures(tmp_path):
    write_article(tmp_path / "papers" / "PMC1", licence=f"<copyright-statement>{HINDAWI}</copyright-statement>")
    res = mine([str(tmp_path / "papers")], tmp_path / "out", Settings())
    assert res.counts["kept"] == 5 and not res.licences
    assert {r["source"]["licence"] for r in read(tmp_path / "out" / "manifest.jsonl")} == {"CC BY"}


def test_rerun_state_covers_the_figure_files(tmp_path, capsys):
    """A graphic missing on the first run and supplied afterwards is mined on the rerun; a
    figure file replaced since makes its source stale; untouched sources are reused."""
    write_article(tmp_path / "papers" / "PMC1")
    write_article(tmp_path / "papers" / "PMC2")
    texture(7, (200, 150)).save(tmp_path / "papers" / "PMC2" / "g4.png")  # PMC2 has its Fig. 4
    out = tmp_path / "out"
    argv = ["mine", str(tmp_path / "papers"), "--out", str(out)]
    assert main(argv) == 0
    assert [r["detail"] for r in read(out / "rejects.jsonl") if r["reason"] == "missing_graphic"] == [
        "Fig. 4: graphic 'g4' not found next to article.nxml"]
    capsys.readouterr()

    texture(8, (200, 150)).save(tmp_path / "papers" / "PMC1" / "g4.png")  # supplied now
    assert main(argv) == 0
    assert "1 mined now, 1 done earlier (reused)" in capsys.readouterr().out
    assert not [r for r in read(out / "rejects.jsonl") if r["reason"] == "missing_graphic"]
    fig4 = [r for r in read(out / "manifest.jsonl") if r["source"]["figure"] == "Fig. 4"]
    assert [r["source"]["file"] for r in fig4] == ["papers/PMC1/article.nxml", "papers/PMC2/article.nxml"]

    texture(9, (300, 200)).convert("RGB").save(tmp_path / "papers" / "PMC2" / "g1.jpg", quality=95)  # replaced
    assert main(argv) == 0
    assert "1 mined now, 1 done earlier (reused)" in capsys.readouterr().out
    for rec in read(out / "manifest.jsonl"):
        assert image_id(out / rec["image"]) == rec["id"]
    assert main(argv) == 0
    assert "0 mined now, 2 done earlier (reused)" in capsys.readouterr().out


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def test_tar_gz_packages_are_sources(tmp_path, capsys):
    folder = tmp_path / "unpacked" / "PMC7654321"
    write_article(folder)
    files = {f"PMC7654321/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    # a PMC OA package, plus a hostile member name and a link that must never be followed
    _tar(pkgs / "PMC7654321.tar.gz", {**files, "../outside.png": b"x"}, links={"PMC7654321/g4": "/etc/passwd"})
    (pkgs / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    _tar(pkgs / "two.tar.gz", {"a/x.nxml": b"<article/>", "a/y.nxml": b"<article/>"})

    assert main(["mine", str(pkgs), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == ("mine: 3 sources (3 JATS (3 in .tar.gz packages), 0 PDF, 0 PDF pages): 3 mined now, "
                          "0 done earlier (reused); 0 other files in the folders")
    mine([str(tmp_path / "unpacked")], tmp_path / "plain", Settings())
    strip = [{**r, "source": {k: v for k, v in r["source"].items() if k != "file"}}
             for r in read(tmp_path / "plain" / "manifest.jsonl")]
    recs = read(tmp_path / "out" / "manifest.jsonl")
    assert [{**r, "source": {k: v for k, v in r["source"].items() if k != "file"}} for r in recs] == strip
    assert {r["source"]["file"] for r in recs} == {"pkgs/PMC7654321.tar.gz"}
    rejects = [(r["file"], r["reason"], r["detail"]) for r in read(tmp_path / "out" / "rejects.jsonl")]
    assert rejects[2][:2] == ("pkgs/broken.tar.gz", "corrupt_package")
    assert rejects[:2] + rejects[3:] == [
        ("pkgs/PMC7654321.tar.gz", "missing_graphic", "Fig. 4: graphic 'g4' not found next to article.nxml"),
        ("pkgs/PMC7654321.tar.gz", "not_fracture", "Fig. 2: score -2: plot (caption) -2 < 3"),
        ("pkgs/two.tar.gz", "not_jats", "2 .nxml/.xml articles in the package; expected one (a/x.nxml, a/y.nxml)"),
    ]
    assert not (tmp_path / "outside.png").exists()


def test_tgz_and_other_files_beside_packages(tmp_path):
    write_article(tmp_path / "src" / "PMC1")
    (tmp_path / "src" / "PMC1" / "PMC1.1.json").write_text("{}")  # harvest's record beside the article
    res = mine([str(tmp_path / "src")], tmp_path / "out", Settings())
    assert (len(res.sources), res.other_files, res.counts["kept"]) == (1, 4, 5)  # g1-g3 + the json
    _tar(tmp_path / "p.tgz", {"PMC1/article.nxml": article(LICENCE_CC_BY, FIGS, BODY).encode()})
    res = mine([str(tmp_path / "p.tgz")], tmp_path / "out2", Settings())
    assert [r["reason"] for r in read(tmp_path / "out2" / "rejects.jsonl")] == [
        "missing_graphic", "missing_graphic", "missing_graphic", "missing_graphic"]

"""A PMC-style JATS article with figure files, for the miner's tests (and the id test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.pdfs import grid, texture

LICENCE_CC_BY = ('<license xlink:href="https://creativecommons.org/licenses/by/4.0/" license-type="open-access">'
                 "<license-p>This is an open access article under the CC BY license.</license-p></license>")
LICENCE_NC = ("<license><license-p>This is an open access article under the CC BY-NC-ND license "
              "(http://creativecommons.org/licenses/by-nc-nd/4.0/).</license-p></license>")


def article(licence: str, figs: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front>
  <journal-meta><journal-title-group><journal-title>Engineering Failure Analysis</journal-title></journal-title-group></journal-meta>
  <article-meta>
    <article-id pub-id-type="pmc">7654321</article-id>
    <article-id pub-id-type="doi">10.1016/J.EFA.2021.105000</article-id>
    <title-group><article-title>Fatigue failure of a
      <italic>316L</italic> shaft</article-title></title-group>
    <pub-date pub-type="ppub"><year>2022</year></pub-date>
    <pub-date pub-type="epub"><day>3</day><month>4</month><year>2021</year></pub-date>
    <permissions>{licence}</permissions>
  </article-meta>
</front>
<body><sec><title>Results</title>{body}{figs}</sec></body>
</article>
"""


FIGS = """
<fig id="f1"><label>Fig. 1</label><caption><p>SEM fractograph of the fatigue fracture surface.</p></caption>
  <graphic xlink:href="g1"/></fig>
<fig id="f2"><label>Fig. 2</label><caption><p>Stress-strain curves of the three heats.</p></caption>
  <graphic xlink:href="g2.png"/></fig>
<fig id="f3"><label>Fig. 3</label><caption><title>Overload zone.</title>
  <p>(a) origin; (b) striations; (c) dimples and (d) shear lip.</p></caption>
  <alternatives><graphic xlink:href="g3.png"/><graphic xlink:href="g3-hires.tif"/></alternatives></fig>
<fig id="f4"><label>Fig. 4</label><caption><p>Fracture surface of the bolt.</p></caption>
  <graphic xlink:href="g4"/></fig>
"""
BODY = """
<p>The shaft failed in service. <xref ref-type="fig" rid="f1">Fig. 1</xref> shows beach marks.</p>
<p>Unrelated paragraph on the loads.</p>
<p>Compare <xref ref-type="fig" rid="f1 f3">Figs. 1 and 3</xref>: ductile dimples dominate.</p>
<p>The heats differ (<xref ref-type="fig" rid="f2">Fig. 2</xref>).</p>
"""
P1 = "The shaft failed in service. Fig. 1 shows beach marks."
P3 = "Compare Figs. 1 and 3: ductile dimples dominate."


def write_article(folder: Path, licence: str = LICENCE_CC_BY) -> dict[str, np.ndarray]:
    """A PMC-style package: article.nxml + figure files; returns the pixels we expect back."""
    folder.mkdir(parents=True)
    (folder / "article.nxml").write_text(article(licence, FIGS, BODY))
    g1 = texture(1, (300, 200))
    g1.convert("RGB").save(folder / "g1.jpg", quality=100)  # PMC hrefs carry no extension
    texture(2).save(folder / "g2.png")
    panels = [texture(10 + i, (160, 120)) for i in range(4)]
    grid(panels, cols=2, gutter=10).save(folder / "g3.png")
    expected = {"Fig. 1": np.asarray(Image.open(folder / "g1.jpg").convert("L"))}
    expected.update({f"Fig. 3{p}": np.asarray(im) for p, im in zip("abcd", panels)})
    return expected

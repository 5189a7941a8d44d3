"""Articles for the harvest tests and benchmark, built from the real JATS files in
tests/fixtures/jats/ (PLOS and eLife articles, CC BY / public domain; origins in
tests/fixtures/README.md) as PMC's Cloud Service serves them.

What PMC does to a publisher's XML, done here too: graphic hrefs become the bare file stem
(PLOS's `info:doi/10.1371/journal.pbio.1001044.g001` -> `pbio.1001044.g001`, eLife's already
are), the article gets its `<article-id pub-id-type="pmc">`, and each figure is a JPEG named
`<stem>.jpg` beside it. The figure pixels are generated (the repositories hold no images).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from tests.support.archive_server import Article
from tests.support.pdfs import texture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jats"
REAL = ["elife00240.xml", "elife09853.xml", "journal.pbio.1001044.xml", "journal.pbio.2001413.xml",
        "journal.pmed.0020402.xml"]


def pmc_xml(name: str, pmcid: str) -> bytes:
    xml = (FIXTURES / name).read_bytes()
    xml = xml.replace(b'xlink:href="info:doi/10.1371/journal.', b'xlink:href="')
    return re.sub(rb"<article-meta>", f'<article-meta><article-id pub-id-type="pmc">{pmcid[3:]}</article-id>'.encode(),
                  xml, count=1)


def graphics(xml: bytes) -> list[str]:
    from fracdata.papers import article_facts

    return article_facts(xml).graphics


def jpeg(seed: int, size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    texture(seed, size).convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def real_article(name: str, pmcid: str, seed: int = 0, **kw) -> Article:
    """A real article as PMC serves it: XML, one JPEG per figure graphic, and two media files
    harvest must not fetch (a supplement and a thumbnail of no figure)."""
    xml = pmc_xml(name, pmcid)
    media = {f"{h}.jpg": jpeg(seed + i) for i, h in enumerate(graphics(xml))}
    media.update({"mmc1.pdf": b"%PDF-1.4 supplement", "thumbnail.gif": b"GIF89a"})
    doi = re.search(rb'pub-id-type="doi">([^<]+)<', xml).group(1).decode().lower()
    return Article(pmcid, xml, media, doi=doi, **kw)


def real_corpus(n_copies: int = 1) -> list[Article]:
    """The five real articles (PMC100..PMC104), repeated n_copies times under new PMCIDs."""
    out = []
    for c in range(n_copies):
        for i, name in enumerate(REAL):
            k = 100 + c * len(REAL) + i
            out.append(real_article(name, f"PMC{k}", seed=10 * k))
    return out

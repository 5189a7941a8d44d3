"""What an article says about itself, read the same way by `fracdata harvest` (before it downloads
any figure file) and `fracdata mine`: the JATS root, the article's DOI, licence and figure
graphics; DOI finding and whitespace cleaning; SourceError, the one "this source is unusable".

The DTD is never loaded and no entity is resolved: an article cannot make a reader open other
files or the network. Harvest comes before mine in the pipeline, so what both read lives here in
the core, not in the mine stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fracdata.licence import normalise_licence

DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)")


XLINK = "{http://www.w3.org/1999/xlink}href"
# PMC packages name graphics without an extension ("ijms-21-g003") next to the .nxml.
GRAPHIC_EXTS = ("", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")



class SourceError(Exception):
    """The whole source is unusable (corrupt, encrypted, not JATS): one counted reject."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def clean(text: str | None) -> str:
    """Collapse whitespace (XML indentation, PDF line breaks) to single spaces."""
    return re.sub(r"\s+", " ", text or "").strip()


def find_doi(*texts: str | None) -> str | None:
    for t in texts:
        m = DOI_RE.search(t or "")
        if m:
            return m.group(1).rstrip(".,;:)]}").lower()
    return None


def text_of(el) -> str:
    return clean("".join(el.itertext())) if el is not None else ""


def first_match(root, *paths):
    for p in paths:
        found = root.xpath(p)
        if found:
            return found[0]
    return None


def local_name(el) -> str:
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""


# Floats and cited works carry permissions of their own (reproduced material, a related
# article): never the article's licence.
_NOT_THE_ARTICLES = frozenset({"fig", "fig-group", "table-wrap", "supplementary-material", "related-article",
                               "media", "boxed-text"})


def article_licence(meta) -> tuple[str | None, str | None]:
    """(normalised, raw) from the article's metadata, wherever JATS puts the statement: inside
    `<permissions>` or, in older (NLM 2.x) articles such as PLoS ONE 2007, as a bare
    `<copyright-statement>` (or `<license>`) straight in `<article-meta>`.

    Trust order: licence URLs (`<license xlink:href>`, `<ali:license_ref>`, a CC link inside the
    licence or copyright prose), then the prose of `<license-p>`, then `<copyright-statement>`
    (older articles, e.g. Hindawi and PLOS before 2008, state CC BY only there), then
    `license-type` ("cc-by"). Figure- and table-level permissions (reproduced material) and a
    related article's are not the article's licence and are not read here.
    """
    urls, prose, statements, types = [], [], [], []
    for el in meta.iter():
        name = local_name(el)
        if name not in ("license", "license_ref", "copyright-statement", "ext-link"):
            continue
        if any(local_name(a) in _NOT_THE_ARTICLES for a in el.iterancestors()):
            continue
        if name == "license":
            if el.get(XLINK):
                urls.append(el.get(XLINK))
            if el.get("license-type"):
                types.append(el.get("license-type"))
            prose.append(text_of(el))
        elif name == "license_ref":  # ali:license_ref (NISO Access and License Indicators)
            urls.append(clean(el.text))
        elif name == "copyright-statement":
            statements.append(text_of(el))
        elif el.get(XLINK) and any(local_name(a) in ("permissions", "license", "copyright-statement")
                                   for a in el.iterancestors()):
            urls.append(el.get(XLINK))  # "...under CC BY (<ext-link xlink:href=...>)"
    texts = [t for t in urls + prose + statements + types if t]
    return normalise_licence(*texts), (texts[0] if texts else None)


def graphic_candidates(href: str) -> list[str]:
    """File names an href may be stored under: as given, with an extension, or with the
    extension swapped ("fig1.tif" in the XML, "fig1.jpg" beside it: PMC converts TIFFs)."""
    names = [f"{href}{ext}" for ext in GRAPHIC_EXTS]
    stem, dot, ext = href.rpartition(".")
    if dot and stem and "/" not in ext and f".{ext.lower()}" in GRAPHIC_EXTS:
        names += [f"{stem}{e}" for e in GRAPHIC_EXTS if e]
    return list(dict.fromkeys(names))


def parse_root(path: Path, data: bytes | None):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = (etree.fromstring(data, parser) if data is not None else etree.parse(str(path), parser).getroot())
    except (etree.XMLSyntaxError, OSError) as e:
        raise SourceError("malformed_xml", f"{type(e).__name__}: {e}") from e
    if root is None:
        raise SourceError("malformed_xml", "empty document")
    if etree.QName(root).localname == "pmc-articleset":  # what PMC's efetch returns
        articles = root.findall("article")
        if len(articles) != 1:
            raise SourceError("not_jats", f"<pmc-articleset> holds {len(articles)} articles; save one per file")
        root = articles[0]
    if etree.QName(root).localname != "article":
        raise SourceError("not_jats", f"root element is <{etree.QName(root).localname}>, not <article>")
    meta = first_match(root, "front/article-meta")
    if meta is None:
        raise SourceError("not_jats", "no <front>/<article-meta>")
    return root, meta


def figure_graphics(root):
    """(fig element, label, [hrefs]) per <fig>, in document order; the first graphic of an
    <alternatives> stands for all of them."""
    for fig in root.iter("fig"):
        graphics = [g for g in fig.iter("graphic") if g.getparent().tag != "alternatives"]
        graphics += [alt.find("graphic") for alt in fig.iter("alternatives") if alt.find("graphic") is not None]
        yield fig, text_of(fig.find("label")) or None, [g.get(XLINK) for g in graphics]


@dataclass
class Facts:
    """What `fracdata harvest` needs from an article before fetching its figure files."""
    doi: str | None
    licence: str | None
    licence_raw: str | None
    graphics: list[str]  # every figure graphic href, in document order, without duplicates


def article_facts(data: bytes, name: str = "article.xml") -> Facts:
    root, meta = parse_root(Path(name), data)
    doi_el = first_match(meta, 'article-id[@pub-id-type="doi"]')
    licence, raw = article_licence(meta)
    hrefs = [h for _, _, hs in figure_graphics(root) for h in hs if h]
    return Facts(doi=find_doi(doi_el.text) if doi_el is not None else None, licence=licence, licence_raw=raw,
                 graphics=list(dict.fromkeys(hrefs)))



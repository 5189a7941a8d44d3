"""JATS XML (PubMed Central open-access `.nxml` + figure files) -> Article.

Figures are `<fig>` elements (`<label>`, `<caption>`, `<graphic xlink:href>`); excerpts are
the body paragraphs holding an `<xref ref-type="fig" rid="...">` to the figure, in document
order. The DTD is never loaded and no entity is resolved: an article cannot make the miner
read other files or the network.

The same reading serves `fracdata harvest`, which confirms an article's licence and lists the
graphics to download before any figure file exists (`article_facts`), and the `.tar.gz`
packages (package.py), whose graphics are resolved inside the archive (`resolve=`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fracdata.mine.article import (
    Article,
    Figure,
    FigureReject,
    SourceError,
    clean,
    find_doi,
)
from fracdata.mine.licence import normalise_licence

XLINK = "{http://www.w3.org/1999/xlink}href"
# PMC packages name graphics without an extension ("ijms-21-g003") next to the .nxml.
GRAPHIC_EXTS = ("", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")


def _text(el) -> str:
    return clean("".join(el.itertext())) if el is not None else ""


# Floating objects eLife and others place inside a paragraph: their text is not the paragraph's.
_FLOATS = frozenset({"fig", "fig-group", "table-wrap", "table-wrap-group", "supplementary-material", "boxed-text",
                     "media"})


def _para_text(el) -> str:
    """A paragraph's own text, without the figures, tables and boxes nested in it (an excerpt
    must not repeat the figure's caption)."""
    def walk(e):
        parts = [e.text or ""]
        for child in e:
            if isinstance(child.tag, str) and _local(child) not in _FLOATS:
                parts.append(walk(child))
            parts.append(child.tail or "")
        return "".join(parts)
    return clean(walk(el))


def _caption_text(cap) -> str:
    """A caption's title and paragraphs joined with spaces: eLife writes
    `<title>...a cell.</title><p>Kroschwald et al. ...` with nothing between them."""
    if cap is None:
        return ""
    parts = [cap.text or ""]
    for c in cap:
        if isinstance(c.tag, str):
            text = _text(c)
            parts.append(f" {text} " if _local(c) in ("title", "p", "list", "def-list", "disp-quote") else text)
        parts.append(c.tail or "")
    return clean("".join(parts))


def _first(root, *paths):
    for p in paths:
        found = root.xpath(p)
        if found:
            return found[0]
    return None


def _year(meta) -> int | None:
    # The publication date, preferring the electronic one (what the DOI resolves to).
    for p in ('pub-date[@pub-type="epub"]', 'pub-date[@date-type="pub"]', 'pub-date[@pub-type="ppub"]',
              "pub-date"):
        for d in meta.xpath(p):
            y = d.findtext("year")
            if y and y.strip().isdigit():
                return int(y.strip())
    return None


def _local(el) -> str:
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""


# Floats and cited works carry permissions of their own (reproduced material, a related
# article): never the article's licence.
_NOT_THE_ARTICLES = frozenset({"fig", "fig-group", "table-wrap", "supplementary-material", "related-article",
                               "media", "boxed-text"})


def _licence(meta) -> tuple[str | None, str | None]:
    """(normalised, raw) from the article's metadata, wherever JATS puts the statement: inside
    `<permissions>` or, in older (NLM 2.x) articles such as PLoS ONE 2007, as a bare
    `<copyright-statement>` (or `<license>`) straight in `<article-meta>`.

    Trust order: licence URLs (`<license xlink:href>`, `<ali:license_ref>`, a CC link inside the
    licence or copyright prose), then the prose of `<license-p>`, then `<copyright-statement>`
    (older articles, e.g. Hindawi and PLOS before 2008, state CC BY only there), then
    `license-type` ("cc-by"). Figure- and table-level permissions (reproduced material) are not
    the article's licence and are not read here.
    """
    urls, prose, statements, types = [], [], [], []
    for el in meta.iter():
        name = _local(el)
        if name not in ("license", "license_ref", "copyright-statement", "ext-link"):
            continue
        if any(_local(a) in _NOT_THE_ARTICLES for a in el.iterancestors()):
            continue
        if name == "license":
            if el.get(XLINK):
                urls.append(el.get(XLINK))
            if el.get("license-type"):
                types.append(el.get("license-type"))
            prose.append(_text(el))
        elif name == "license_ref":  # ali:license_ref (NISO Access and License Indicators)
            urls.append(clean(el.text))
        elif name == "copyright-statement":
            statements.append(_text(el))
        elif el.get(XLINK) and any(_local(a) in ("permissions", "license", "copyright-statement")
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


def resolve_graphic(href: str, folder: Path) -> Path | None:
    """The file an href names next to the article, or None; never a file outside `folder`."""
    for name in graphic_candidates(href):
        p = folder / name
        # only files inside the article's folder: an href is data, not a licence to read anywhere
        if p.is_file() and p.resolve().is_relative_to(folder.resolve()):
            return p
    return None


def _parse_root(path: Path, data: bytes | None):
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
    meta = _first(root, "front/article-meta")
    if meta is None:
        raise SourceError("not_jats", "no <front>/<article-meta>")
    return root, meta


def _figure_graphics(root):
    """(fig element, label, [hrefs]) per <fig>, in document order; the first graphic of an
    <alternatives> stands for all of them."""
    for fig in root.iter("fig"):
        graphics = [g for g in fig.iter("graphic") if g.getparent().tag != "alternatives"]
        graphics += [alt.find("graphic") for alt in fig.iter("alternatives") if alt.find("graphic") is not None]
        yield fig, _text(fig.find("label")) or None, [g.get(XLINK) for g in graphics]


@dataclass
class Facts:
    """What `fracdata harvest` needs from an article before fetching its figure files."""
    doi: str | None
    licence: str | None
    licence_raw: str | None
    graphics: list[str]  # every figure graphic href, in document order, without duplicates


def article_facts(data: bytes, name: str = "article.xml") -> Facts:
    root, meta = _parse_root(Path(name), data)
    doi_el = _first(meta, 'article-id[@pub-id-type="doi"]')
    licence, raw = _licence(meta)
    hrefs = [h for _, _, hs in _figure_graphics(root) for h in hs if h]
    return Facts(doi=find_doi(doi_el.text) if doi_el is not None else None, licence=licence, licence_raw=raw,
                 graphics=list(dict.fromkeys(hrefs)))


def parse_jats(path: Path, data: bytes | None = None,
               resolve: Callable[[str], object | None] | None = None) -> Article:
    """Parse the article at `path` (or `data`, named `path`); `resolve(href)` gives a graphic's
    file (a path or a file object) or None, by default the file next to `path`."""
    root, meta = _parse_root(path, data)
    doi_el = _first(meta, 'article-id[@pub-id-type="doi"]')
    pmc_el = _first(meta, 'article-id[@pub-id-type="pmc"]', 'article-id[@pub-id-type="pmcid"]')
    licence, raw = _licence(meta)
    art = Article(
        doi=find_doi(doi_el.text) if doi_el is not None else None,
        title=_text(_first(meta, "title-group/article-title")) or None,
        journal=_text(_first(root, "front/journal-meta//journal-title")) or None,
        year=_year(meta), licence=licence, licence_raw=raw,
    )
    art.doi_from = "jats" if art.doi else "none"
    if pmc_el is not None and clean(pmc_el.text):
        pmc = clean(pmc_el.text)
        art.url = f"https://www.ncbi.nlm.nih.gov/pmc/articles/{pmc if pmc.startswith('PMC') else 'PMC' + pmc}/"
    elif art.doi:
        art.url = f"https://doi.org/{art.doi}"

    # Citing paragraphs: the nearest <p> around each fig xref; rid may list several ids.
    cites: dict[str, list] = {}
    for xref in root.xpath('//xref[@ref-type="fig"]'):
        p = next((a for a in xref.iterancestors("p")), None)
        if p is None or next(p.iterancestors("fig", "caption", "table-wrap"), None) is not None:
            continue  # a caption citing another figure is not a discussion of it
        for rid in (xref.get("rid") or "").split():
            if p not in cites.setdefault(rid, []):
                cites[rid].append(p)

    if resolve is None:
        def resolve(href):  # noqa: E306  on disk, next to the article; every lookup is a rerun input
            found = resolve_graphic(href, path.parent)
            art.inputs.append((href, found))
            return found

    order = {p: i for i, p in enumerate(root.iter("p"))}  # document order of paragraphs
    for fig, label, hrefs in _figure_graphics(root):
        caption = _caption_text(fig.find("caption"))
        # <fig-group> ids cover their member figures: a citation of the group cites each.
        ids = [fig.get("id")] + [g.get("id") for g in fig.iterancestors("fig-group")]
        paras = sorted({p for i in ids if i for p in cites.get(i, [])}, key=order.__getitem__)
        excerpts = list(dict.fromkeys(t for t in (_para_text(p) for p in paras) if t))
        if not hrefs:
            art.rejects.append(FigureReject(label, "no_graphic", "<fig> has no <graphic>"))
        for href in hrefs:
            found = resolve(href) if href else None
            if found is None:
                art.rejects.append(FigureReject(label, "missing_graphic",
                                                f"graphic {href!r} not found next to {path.name}"))
                continue
            art.figures.append(Figure(label=label, caption=caption, excerpts=excerpts, image=found))
    return art

"""JATS XML (PubMed Central open-access `.nxml` + figure files) -> Article.

Figures are `<fig>` elements (`<label>`, `<caption>`, `<graphic xlink:href>`); excerpts are
the body paragraphs holding an `<xref ref-type="fig" rid="...">` to the figure, in document
order. The DTD is never loaded and no entity is resolved: an article cannot make the miner
read other files or the network.
"""

from __future__ import annotations

from pathlib import Path

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


def _licence(meta) -> tuple[str | None, str | None]:
    """(normalised, raw) from <permissions>: licence URLs first, then license-type, then prose."""
    perms = meta.find("permissions")
    if perms is None:
        return None, None
    urls = [el.get(XLINK) for el in perms.iter("license") if el.get(XLINK)]
    urls += [clean(el.text) for el in perms.iter() if isinstance(el.tag, str) and el.tag.endswith("license_ref")]
    types = [el.get("license-type") for el in perms.iter("license") if el.get("license-type")]
    prose = [_text(el) for el in perms.iter("license")]
    raw = next((t for t in urls + prose + types if t), None)
    return normalise_licence(*urls, *prose, *types), raw


def _graphic_path(href: str, folder: Path) -> Path | None:
    for ext in GRAPHIC_EXTS:
        p = folder / f"{href}{ext}"
        # only files inside the article's folder: an href is data, not a licence to read anywhere
        if p.is_file() and p.resolve().is_relative_to(folder.resolve()):
            return p
    return None


def parse_jats(path: Path) -> Article:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (etree.XMLSyntaxError, OSError) as e:
        raise SourceError("malformed_xml", f"{type(e).__name__}: {e}") from e
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

    doi_el = _first(meta, 'article-id[@pub-id-type="doi"]')
    pmc_el = _first(meta, 'article-id[@pub-id-type="pmc"]', 'article-id[@pub-id-type="pmcid"]')
    licence, raw = _licence(meta)
    art = Article(
        doi=find_doi(doi_el.text) if doi_el is not None else None,
        title=_text(_first(meta, "title-group/article-title")) or None,
        journal=_text(_first(root, "front/journal-meta//journal-title")) or None,
        year=_year(meta), licence=licence, licence_raw=raw,
    )
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

    order = {p: i for i, p in enumerate(root.iter("p"))}  # document order of paragraphs
    for fig in root.iter("fig"):
        label = _text(fig.find("label")) or None
        caption = _text(fig.find("caption"))
        # <fig-group> ids cover their member figures: a citation of the group cites each.
        ids = [fig.get("id")] + [g.get("id") for g in fig.iterancestors("fig-group")]
        paras = sorted({p for i in ids if i for p in cites.get(i, [])}, key=order.__getitem__)
        excerpts = list(dict.fromkeys(_text(p) for p in paras))
        graphics = [g for g in fig.iter("graphic") if g.getparent().tag != "alternatives"]
        graphics += [alt.find("graphic") for alt in fig.iter("alternatives") if alt.find("graphic") is not None]
        if not graphics:
            art.rejects.append(FigureReject(label, "no_graphic", "<fig> has no <graphic>"))
        for g in graphics:
            href = g.get(XLINK)
            found = _graphic_path(href, path.parent) if href else None
            if found is None:
                art.rejects.append(FigureReject(label, "missing_graphic",
                                                f"graphic {href!r} not found next to {path.name}"))
                continue
            art.figures.append(Figure(label=label, caption=caption, excerpts=excerpts, image=found))
    return art

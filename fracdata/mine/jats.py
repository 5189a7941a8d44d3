"""JATS XML (PubMed Central open-access `.nxml` + figure files) -> Article.

Figures are `<fig>` elements (`<label>`, `<caption>`, `<graphic xlink:href>`); excerpts are
the body paragraphs holding an `<xref ref-type="fig" rid="...">` to the figure, in document
order. The DTD is never loaded and no entity is resolved: an article cannot make the miner
read other files or the network.

The article-level reading (root, DOI, licence, graphics) is fracdata/papers.py's, shared with
`fracdata harvest`, which confirms an article's licence and lists the graphics to download before
any figure file exists; the `.tar.gz` packages (package.py) resolve graphics inside the archive
(`resolve=`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from fracdata.mine.article import Article, Figure, FigureReject
from fracdata.papers import (article_licence, clean, figure_graphics, find_doi, first_match, graphic_candidates,
                             local_name, parse_root, text_of)

# Floating objects eLife and others place inside a paragraph: their text is not the paragraph's.
_FLOATS = frozenset({"fig", "fig-group", "table-wrap", "table-wrap-group", "supplementary-material", "boxed-text",
                     "media"})


def _para_text(el) -> str:
    """A paragraph's own text, without the figures, tables and boxes nested in it (an excerpt
    must not repeat the figure's caption)."""
    def walk(e):
        parts = [e.text or ""]
        for child in e:
            if isinstance(child.tag, str) and local_name(child) not in _FLOATS:
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
            text = text_of(c)
            parts.append(f" {text} " if local_name(c) in ("title", "p", "list", "def-list", "disp-quote") else text)
        parts.append(c.tail or "")
    return clean("".join(parts))


def _year(meta) -> int | None:
    # The publication date, preferring the electronic one (what the DOI resolves to).
    for p in ('pub-date[@pub-type="epub"]', 'pub-date[@date-type="pub"]', 'pub-date[@pub-type="ppub"]',
              "pub-date"):
        for d in meta.xpath(p):
            y = d.findtext("year")
            if y and y.strip().isdigit():
                return int(y.strip())
    return None


def resolve_graphic(href: str, folder: Path) -> Path | None:
    """The file an href names next to the article, or None; never a file outside `folder`."""
    for name in graphic_candidates(href):
        p = folder / name
        # only files inside the article's folder: an href is data, not a licence to read anywhere
        if p.is_file() and p.resolve().is_relative_to(folder.resolve()):
            return p
    return None


def parse_jats(path: Path, data: bytes | None = None,
               resolve: Callable[[str], object | None] | None = None) -> Article:
    """Parse the article at `path` (or `data`, named `path`); `resolve(href)` gives a graphic's
    file (a path or a file object) or None, by default the file next to `path`."""
    root, meta = parse_root(path, data)
    doi_el = first_match(meta, 'article-id[@pub-id-type="doi"]')
    pmc_el = first_match(meta, 'article-id[@pub-id-type="pmc"]', 'article-id[@pub-id-type="pmcid"]')
    licence, raw = article_licence(meta)
    art = Article(
        doi=find_doi(doi_el.text) if doi_el is not None else None,
        title=text_of(first_match(meta, "title-group/article-title")) or None,
        journal=text_of(first_match(root, "front/journal-meta//journal-title")) or None,
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
    for fig, label, hrefs in figure_graphics(root):
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

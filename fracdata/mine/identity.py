"""A PDF's own DOI and licence: from its metadata, its XMP and its first page, never from its references.

Papers print dozens of DOIs: every reference has one, and templates leave placeholders such as
`10.1109/ACCESS.2024.0000000`. The article's own DOI is taken, in this order of trust, from
  metadata    the document information dictionary: a `/doi` key, else a DOI in another value
              (Elsevier writes "Journal 105 (2019) 105123. doi:10.1016/..." into `/Subject`);
  xmp         the XMP packet: `prism:doi`, `pdfx:doi`, `crossmark:DOI`, then `dc:identifier`;
  first_page  page 1 outside its references: a DOI in the running header or footer (a run of
              lines wholly in the top or bottom 12% of the page, set apart from the body),
              else a `https://doi.org/` or Crossmark link annotation, else a line that says it
              is a DOI ("doi:", "DOI", "doi.org");
and when none of those holds one, there is none: never the first DOI of the text, never a guess.
Within one rank, two different DOIs are a tie nobody can break: the rank gives none.
References are the lines after a "References" / "Bibliography" heading (to the end of the
document, running headers and footers left out) and every numbered entry ("[3] ...", "3. ...") holding a DOI; placeholders (a last
segment of zeros or x's, or "DOI") are never a DOI.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

from fracdata.licence import normalise_licence
from fracdata.papers import DOI_RE

BAND = 0.12  # header and footer: the top and bottom 12% of the page (A4: 101 pt)
PLACEHOLDER_RE = re.compile(r"[./_-](?:0{4,}|x{3,}|doi)$", re.IGNORECASE)
MARKER_RE = re.compile(r"\bdoi\b|doi\.org|digital\s+object\s+identifier", re.IGNORECASE)
REFS_HEADING_RE = re.compile(
    r"^(?:[0-9IVX]{1,4}\.?\s+)?(?:references?(?:\s+and\s+notes)?|bibliography|literature\s+cited|works\s+cited|"
    r"cited\s+literature)\s*:?$", re.IGNORECASE)
# a numbered reference entry: "[3] A. Author", "(3) Author", "3. Author", "3 Author" (Springer)
REF_ENTRY_RE = re.compile(r"^\s*(?:\[\d{1,3}\]|\(\d{1,3}\)|\d{1,3}\.?\s+(?=[A-Z\u00c0-\u024f]))")
_XMP_DOI_NAMES = ("doi",)  # prism:doi, pdfx:doi, crossmark:DOI (local names, case-insensitive)
_XMP_ID_NAMES = ("identifier", "url")  # dc:identifier ("doi:10..."), prism:url ("https://doi.org/10...")


def dois_in(text: str | None) -> list[str]:
    """Every DOI in the text, lower-cased, trailing punctuation dropped, placeholders left out."""
    out = []
    for m in DOI_RE.finditer(unquote(text or "")):
        d = m.group(1).rstrip(".,;:)]}").lower()
        if not PLACEHOLDER_RE.search(d) and d not in out:
            out.append(d)
    return out


def _one(candidates: list[str]) -> str | None:
    """The DOI when every candidate names the same one; None for none or a tie."""
    distinct = list(dict.fromkeys(candidates))
    return distinct[0] if len(distinct) == 1 else None


def metadata_doi(meta: dict[str, str]) -> str | None:
    explicit = [d for k, v in meta.items() if k.lower() == "/doi" for d in dois_in(v)]
    if explicit:
        return explicit[0]
    for key in ("/Subject", "/Title", "/Keywords"):
        found = dois_in(meta.get(key))
        if found:
            return found[0]
    return next((d for k, v in meta.items() for d in dois_in(v)), None)


def xmp_doi(xmp: str) -> str | None:
    if not xmp.strip():
        return None
    from lxml import etree

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True)
        root = etree.fromstring(xmp.strip().encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None:  # not XML at all: only a tagged DOI element counts
        m = re.search(r"<(\w+:)?doi\b[^>]*>([^<]+)<", xmp, re.IGNORECASE)
        return (dois_in(m.group(2)) or [None])[0] if m else None
    for names in (_XMP_DOI_NAMES, _XMP_ID_NAMES):
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            texts = []
            if etree.QName(el).localname.lower() in names:
                texts.append("".join(el.itertext()))
            # XMP may write simple properties as attributes of rdf:Description
            texts += [v for k, v in el.attrib.items() if etree.QName(k).localname.lower() in names]
            for t in texts:
                found = dois_in(t)
                if found:
                    return found[0]
    return None


def running_lines(lines, page_h: float | None) -> set[int]:
    """ids of the running header and footer lines: per page and column, the first run of lines
    (lines <= 1.8 line heights apart) when it lies wholly in the top band, and the last run
    when it lies wholly in the bottom band; a reference list that runs into the band continues
    its run and stays a reference list."""
    if not page_h:
        return set()
    out, by_col = set(), {}
    for ln in lines:
        by_col.setdefault((ln.page, ln.col), []).append(ln)
    for col in by_col.values():
        col.sort(key=lambda ln: -ln.y)
        runs = [[col[0]]]
        for prev, ln in zip(col, col[1:]):
            if prev.y - ln.y > 1.8 * max(prev.size, ln.size):
                runs.append([])
            runs[-1].append(ln)
        if all(ln.y >= (1 - BAND) * page_h for ln in runs[0]):
            out |= {id(ln) for ln in runs[0]}
        if all(ln.y <= BAND * page_h for ln in runs[-1]):
            out |= {id(ln) for ln in runs[-1]}
    return out


def reference_lines(lines, running: set[int]) -> set[int]:
    """ids of the lines that are references: everything after a references heading (in reading
    order, to the end of the document, running headers and footers left out) and every
    numbered entry that holds a DOI."""
    refs, inside = set(), False
    for ln in lines:
        if not inside and REFS_HEADING_RE.match(ln.text.strip()):
            inside = True
        if (inside and id(ln) not in running) or (REF_ENTRY_RE.match(ln.text) and DOI_RE.search(ln.text)):
            refs.add(id(ln))
    return refs


def link_uris(page) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(URI, rect) of each link annotation of a pypdf page."""
    out = []
    for ref in page.get("/Annots") or []:
        annot = ref.get_object()
        action = annot.get("/A")
        action = action.get_object() if action is not None else None
        if annot.get("/Subtype") == "/Link" and action is not None and action.get("/URI"):
            rect = [float(v) for v in annot.get("/Rect", [0, 0, 0, 0])]
            out.append((str(action["/URI"]), tuple(rect)))
    return out


def _link_doi(uri: str) -> list[str]:
    u = urlparse(uri)
    if u.netloc.lower().endswith("doi.org"):
        return dois_in(u.path.lstrip("/"))
    if "crossmark" in u.netloc.lower():  # Crossmark's "Check for updates": ...dialog/?doi=10.1016/...
        return [d for v in parse_qs(u.query).get("doi", []) for d in dois_in(v)]
    return []


def first_page_doi(lines, refs: set[int], running: set[int], links, page_w: float) -> str | None:
    """The DOI page 1 states for itself (module doc), or None."""
    page1 = [ln for ln in lines if ln.page == 1 and id(ln) not in refs]
    heading = next((ln for ln in lines if ln.page == 1 and id(ln) in refs and REFS_HEADING_RE.match(ln.text.strip())),
                   None)

    def in_refs(rect) -> bool:  # a link below the page-1 references heading, in its column or a later one
        if heading is None:
            return False
        col = 0 if (rect[0] + rect[2]) / 2 < page_w / 2 else 1
        return col > heading.col or (col == heading.col and max(rect[1], rect[3]) <= heading.y + heading.size)

    band = [d for ln in page1 if id(ln) in running for d in dois_in(ln.text)]
    linked = [d for uri, rect in links if not in_refs(rect) for d in _link_doi(uri)]
    marked = [d for ln in page1 if MARKER_RE.search(ln.text) for d in dois_in(ln.text)]
    for rank in (band, linked, marked):
        if rank:
            return _one(rank)
    return None


def pdf_identity(meta: dict[str, str], xmp: str, lines, links, page_size) -> tuple[str | None, str, str | None]:
    """(DOI, where it came from: metadata | xmp | first_page | none, licence)."""
    page_h, page_w = page_size or (None, None)
    running = running_lines(lines, page_h)
    refs = reference_lines(lines, running)
    doi, where = metadata_doi(meta), "metadata"
    if doi is None:
        doi, where = xmp_doi(xmp), "xmp"
    if doi is None and page_w:
        doi, where = first_page_doi(lines, refs, running, links, page_w), "first_page"
    return doi, (where if doi else "none"), pdf_licence(meta, xmp, lines, refs)


def pdf_licence(meta: dict[str, str], xmp: str, lines, refs: set[int]) -> str | None:
    """The licence from the metadata, XMP, page 1 and the body, outside the references; else from
    text after the references that is not a numbered entry (a closing Open Access statement)."""
    page1 = " ".join(ln.text for ln in lines if ln.page == 1 and id(ln) not in refs)
    body = " ".join(ln.text for ln in lines if id(ln) not in refs)
    after = " ".join(ln.text for ln in lines if id(ln) in refs and not REF_ENTRY_RE.match(ln.text))
    return normalise_licence(*meta.values(), xmp, page1, body) or normalise_licence(after)

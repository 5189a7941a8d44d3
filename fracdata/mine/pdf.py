"""PDF -> Article with pypdf (BSD licence, pure Python, already a core dependency).

pypdf reports, through its content-stream visitors, where each text run starts and where
each image is drawn (the CTM at the `Do` operator). From those positions:
  lines     text runs on one baseline, split where a gap of > 2 em separates two columns;
  blocks    consecutive lines of one column whose baselines are <= 1.6 line heights apart;
  captions  blocks starting "Fig. 3." / "Figure 3:" / "FIG. 3 Upper..." (not "Fig. 3 shows");
  pairing   each image takes the nearest caption below it that overlaps it horizontally,
            else the nearest above (captions of tables and some journals sit above); panel
            sub-captions ("(a) SLM Ti-6Al-4V specimen") and panel labels between an image and
            its caption do not block the pairing, and name the panel;
  excerpts  the other blocks that cite "Fig. 3", "Figs. 2 and 3", "Figs. 2-4", "Fig. 3b".
Two-column pages are read column by column (a line starting left of the middle of the page
is in the left column). Layouts beyond that are a known limit: see docs/mine.md.
A page pypdf cannot parse (a damaged stream, or one of its resource limits such as 2,000,000
tokens per content stream) is a counted `unreadable_page` naming the limit; the other pages
are mined.

Memory does not grow with the page count: parsing reads every page's text and where its images
are drawn, but decodes no image. Each figure's image is a loader (`Figure.image` is a callable,
pdf_images.py) that the pipeline calls when that figure passes its gates, one image at a time: it decodes the
image, drops the decoded stream pypdf caches on the XObject, and the pipeline releases the pixels
before it loads the next. An image that fails to decode is an `unreadable_image` reject then.
Images are named in messages by their XObject name (`Im2`, `FormXob.3f2a...`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from fracdata.mine.article import Article, Figure, FigureReject
from fracdata.mine.identity import link_uris, pdf_identity
from fracdata.mine.pdf_images import image_loader, raised_in_pypdf as _raised_in_pypdf
from fracdata.mine.panels import letters, panel_captions
from fracdata.mine.pdf_figures import SUBCAP_RE, pair_page
from fracdata.papers import SourceError, clean

CAPTION_RE = re.compile(r"^((?:Fig(?:ure)?|FIG(?:URE)?)\.?\s*(\d+))\s*(?:[.:|\u2014\u2013-]|\s(?=[A-Z(\[]))")
REF_RE = re.compile(r"\bFig(?:ure)?s?\.?\s*(\d+[a-z]?(?:\s*(?:,|and|&|[-\u2013])\s*\d+[a-z]?)*)")


@dataclass
class Line:
    page: int
    col: int
    y: float
    x0: float
    x1: float
    size: float
    text: str


def _mul(a, b):
    """PDF 2x3 matrices as 6-lists: a then b (row-vector convention)."""
    return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
            a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5]]


def _page_layout(page, pageno: int):
    """(lines, {xobject name: bbox}) for one page, from pypdf's visitors."""
    runs, boxes = [], {}
    width = float(page.mediabox.width)

    def on_text(text, cm, tm, font, size):
        if text.strip():
            m = _mul(tm, cm)
            eff = (size or 10) * (math.hypot(m[2], m[3]) or 1.0)
            runs.append((m[5], m[4], eff, text.replace("\n", " ").strip()))

    def on_op(op, args, cm, tm):
        if op == b"Do" and args:
            xs = [cm[4], cm[4] + cm[0], cm[4] + cm[2], cm[4] + cm[0] + cm[2]]
            ys = [cm[5], cm[5] + cm[1], cm[5] + cm[3], cm[5] + cm[1] + cm[3]]
            boxes[str(args[0]).lstrip("/")] = (min(xs), min(ys), max(xs), max(ys))

    page.extract_text(visitor_text=on_text, visitor_operand_before=on_op)
    lines: list[Line] = []
    # One baseline = runs within 0.3 em vertically; a horizontal gap > 2 em starts a new line
    # (the neighbouring column). A run's width is estimated as 0.5 em per character.
    for y, x, size, text in sorted(runs, key=lambda r: (-round(r[0], 1), r[1])):
        last = lines[-1] if lines else None
        if last and abs(last.y - y) <= 0.3 * size and x - last.x1 <= 2 * size:
            last.text += " " + text
            last.x1 = max(last.x1, x + 0.5 * size * len(text))
        else:
            lines.append(Line(pageno, 0 if x < width / 2 else 1, y, x, x + 0.5 * size * len(text), size, text))
    lines.sort(key=lambda ln: (ln.col, -ln.y, ln.x0))
    return lines, boxes


def _blocks(lines: list[Line]) -> list[list[Line]]:
    blocks: list[list[Line]] = []
    for ln in lines:
        prev = blocks[-1][-1] if blocks else None
        if (prev is None or prev.page != ln.page or prev.col != ln.col or prev.y - ln.y > 1.6 * max(prev.size, ln.size)
                or CAPTION_RE.match(ln.text)
                # a sub-caption starts its own block, but a caption's wrapped line that starts
                # with a panel mark ("(c) dimples ...") is still the caption
                or SUBCAP_RE.match(ln.text) and not CAPTION_RE.match(blocks[-1][0].text)):
            blocks.append([ln])
        else:
            blocks[-1].append(ln)
    return blocks


def cited_figures(text: str) -> set[int]:
    """Figure numbers a paragraph cites: 'Figs. 2 and 3' -> {2, 3}; 'Figs. 2-4' -> {2, 3, 4}."""
    out: set[int] = set()
    for m in REF_RE.finditer(text):
        nums = re.findall(r"(\d+)[a-z]?|([-\u2013])", m.group(1))
        prev, dash = None, False
        for num, sep in nums:
            if sep:
                dash = True
                continue
            n = int(num)
            out.update(range(prev + 1, n + 1) if dash and prev is not None and prev < n <= prev + 50 else [n])
            prev, dash = n, False
    return out


def _open(path: Path):
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")  # owner-password-only PDFs open with an empty user password
        except Exception as e:  # e.g. AES without the `cryptography` package
            raise SourceError("encrypted_pdf", f"cannot decrypt: {type(e).__name__}: {e}") from e
        if ok == PasswordType.NOT_DECRYPTED:
            raise SourceError("encrypted_pdf", "encrypted with a user password")
    return reader


def parse_pdf(path: Path) -> Article:
    try:
        return _parse(path)
    except SourceError:
        raise
    except Exception as e:
        # pypdf raises many exception types on damaged files: those become a counted reject
        # (one bad PDF must not stop a shard); an error in our own code stays an error.
        if not _raised_in_pypdf(e):
            raise
        raise SourceError("corrupt_pdf", f"{type(e).__name__}: {e}") from e


def _parse(path: Path) -> Article:
    reader = _open(path)
    try:  # metadata is optional: a damaged info dictionary or XMP stream costs only the metadata
        meta = {k: str(v) for k, v in (reader.metadata or {}).items()}
        xmp_obj = reader.trailer["/Root"].get("/Metadata")
        xmp = xmp_obj.get_object().get_data().decode("utf-8", "replace") if xmp_obj is not None else ""
    except Exception as e:
        if not _raised_in_pypdf(e):
            raise
        meta, xmp = {}, ""
    try:  # page 1's size and links, for its DOI; a damaged page 1 costs only them
        first = reader.pages[0] if len(reader.pages) else None
        page_size = (float(first.mediabox.height), float(first.mediabox.width)) if first is not None else None
        links = link_uris(first) if first is not None else []
    except Exception as e:
        if not _raised_in_pypdf(e):
            raise
        page_size, links = None, []

    art = Article(title=clean(meta.get("/Title")) or None, pages=len(reader.pages))
    lines, placed = [], []  # placed: (page, image, bbox or None)
    for pageno, page in enumerate(reader.pages, 1):
        try:  # a page pypdf cannot parse (a resource limit, a broken stream) costs that page only
            page_lines, boxes = _page_layout(page, pageno)
            keys = page.images.keys()  # the image XObjects' names: nothing decoded yet
        except Exception as e:
            if not _raised_in_pypdf(e):
                raise
            art.rejects.append(FigureReject(None, "unreadable_page", f"page {pageno}: {type(e).__name__}: {e}", pageno))
            continue
        lines += page_lines
        for key in keys:
            name = (key[-1] if isinstance(key, list) else key).lstrip("/")
            placed.append((pageno, float(page.mediabox.height), image_loader(reader, pageno, key, name),
                           boxes.get(name), name))

    blocks = _blocks(lines)
    captions = [b for b in blocks if CAPTION_RE.match(b[0].text)]
    body = [clean(" ".join(ln.text for ln in b)) for b in blocks if not CAPTION_RE.match(b[0].text)]
    # the article's own DOI and licence, never its references' (identity.py)
    art.doi, art.doi_from, art.licence = pdf_identity(meta, xmp, lines, links, page_size)
    art.url = f"https://doi.org/{art.doi}" if art.doi else None
    art.licence_raw = art.licence

    if not placed and not art.rejects:
        raise SourceError("no_images", f"no embedded images in {art.pages} page(s)")
    by_caption: dict[int, list] = {}
    for pageno in dict.fromkeys(p[0] for p in placed):  # pairing, page by page (pdf_figures.py)
        on_page = [it for it in placed if it[0] == pageno]
        pairs = pair_page([it[3] for it in on_page], [c for c in captions if c[0].page == pageno],
                          [b for b in blocks if b[0].page == pageno], [ln for ln in lines if ln.page == pageno],
                          on_page[0][1])
        for (_, _, pil, box, name), (blk, sub) in zip(on_page, pairs):
            if blk is None:
                why = "image position unknown" if box is None else "no 'Fig. N' caption next to it"
                art.rejects.append(FigureReject(None, "no_caption", f"{name} on page {pageno}: {why}", pageno))
                continue
            by_caption.setdefault(id(blk), []).append((blk, pageno, pil, box, sub))

    # figures in reading order: page, column, top to bottom
    for items in sorted(by_caption.values(), key=lambda it: (it[0][0][0].page, it[0][0][0].col, -it[0][0][0].y)):
        blk = items[0][0]
        caption = clean(" ".join(ln.text for ln in blk))
        m = CAPTION_RE.match(caption)
        label, number = clean(m.group(1)), int(m.group(2))
        excerpts = list(dict.fromkeys(p for p in body if number in cited_figures(p)))
        # Several images under one caption: panels. Each named by its own sub-caption when
        # every image has one (distinct letters); else lettered in reading order when the
        # caption marks exactly that many panels; otherwise left unlettered. Panel titles
        # without letters ("As-built", "HIP") add their text to the figure's caption.
        items.sort(key=lambda it: (-round(it[3][3] if it[3] else 0), it[3][0] if it[3] else 0))
        subs = [it[4] for it in items]
        own = all(s and s[0] for s in subs) and len({s[0] for s in subs}) == len(subs)
        marks = panel_captions(caption)
        lettered = len(items) > 1 and len(marks) == len(items)
        for i, (_, pageno, pil, _, sub) in enumerate(items):
            panel = sub[0] if own else letters(len(items))[i] if lettered else None
            text = f"{caption} {sub[1]}" if own and sub[1] else caption
            if sub and not own and sub[0] is None and len(items) > 1:  # a panel title: its part of the caption + title
                text = f"{marks.get(panel, caption) if panel else caption} {sub[1]}"
            art.figures.append(Figure(label=label, caption=text, excerpts=excerpts, image=pil, page=pageno, panel=panel))
    return art

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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from fracdata.licence import normalise_licence
from fracdata.mine.article import Article, Figure, FigureReject
from fracdata.papers import SourceError, clean, find_doi
from fracdata.mine.panels import letters, panel_captions

CAPTION_RE = re.compile(r"^((?:Fig(?:ure)?|FIG(?:URE)?)\.?\s*(\d+))\s*(?:[.:|\u2014\u2013-]|\s(?=[A-Z(\[]))")
# A panel's own sub-caption or label, printed under (or beside) its image: "(a) SLM Ti-6Al-4V
# specimen", "(b)", "c) wrought", "d". Upper-case letters as Cell and PLOS print them.
SUBCAP_RE = re.compile(r"^\(([a-zA-Z])\)(?:\s+\S.*)?$|^([a-zA-Z])\)\s+\S.*$|^([a-zA-Z])$")
SUBCAP_MAX = 0.08  # how far (fraction of page height) a sub-caption may sit below its image
REF_RE = re.compile(r"\bFig(?:ure)?s?\.?\s*(\d+[a-z]?(?:\s*(?:,|and|&|[-\u2013])\s*\d+[a-z]?)*)")
BELOW_MAX, ABOVE_MAX = 0.3, 0.15  # how far (fraction of page height) a caption may sit from its image


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
        if (prev is None or prev.col != ln.col or prev.y - ln.y > 1.6 * max(prev.size, ln.size)
                or CAPTION_RE.match(ln.text) or SUBCAP_RE.match(ln.text)):
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


def _pair(box, captions, lines, page_h, soft=frozenset()):
    """The caption block for an image box: the nearest below it, else above it, that overlaps
    it horizontally with no other text line in between (a paragraph between them means the
    caption belongs to another image). Lines in `soft` (panel sub-captions and labels, by id)
    may sit in between: they belong to the same figure."""
    x0, y0, x1, y1 = box

    def clear(lo, hi, blk):  # no line outside blk with a baseline strictly between lo and hi
        return not any(lo < ln.y < hi and ln.x1 >= x0 and ln.x0 <= x1 for ln in lines
                       if ln not in blk and id(ln) not in soft)

    best = None
    for blk in captions:
        first, last = blk[0], blk[-1]
        if max(ln.x1 for ln in blk) < x0 or min(ln.x0 for ln in blk) > x1:  # the block's extent, not its first line
            continue
        below, above = y0 - first.y, last.y - y1
        if -first.size <= below <= BELOW_MAX * page_h and clear(first.y, y0, blk):
            key = (0, below)
        elif 0 <= above <= ABOVE_MAX * page_h and clear(y1, last.y, blk):
            key = (1, above)
        else:
            continue
        if best is None or key < best[0]:
            best = (key, blk)
    return best[1] if best else None


def _subcaption(box, subcaps, page_h):
    """(letter, text) of the sub-caption printed just under an image, or None."""
    x0, y0, x1, _ = box
    best = None
    for blk in subcaps:
        first = blk[0]
        gap = y0 - first.y
        if -first.size <= gap <= SUBCAP_MAX * page_h and first.x0 <= x1 and max(ln.x1 for ln in blk) >= x0:
            if best is None or gap < best[0]:
                best = (gap, blk)
    if best is None:
        return None
    text = clean(" ".join(ln.text for ln in best[1]))
    m = SUBCAP_RE.match(best[1][0].text)
    return (m.group(1) or m.group(2) or m.group(3)).lower(), text


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


def _raised_in_pypdf(e: BaseException) -> bool:
    """True when the innermost pypdf-or-fracdata frame of the traceback is pypdf's own code."""
    import traceback

    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if "/pypdf/" in frame.filename.replace("\\", "/"):
            return True
        if "/fracdata/" in frame.filename.replace("\\", "/"):
            return False
    return False


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

    art = Article(title=clean(meta.get("/Title")) or None, pages=len(reader.pages))
    lines, placed = [], []  # placed: (page, image, bbox or None)
    for pageno, page in enumerate(reader.pages, 1):
        try:  # a page pypdf cannot parse (a resource limit, a broken stream) costs that page only
            page_lines, boxes = _page_layout(page, pageno)
            images = list(page.images)
        except Exception as e:
            if not _raised_in_pypdf(e):
                raise
            art.rejects.append(FigureReject(None, "unreadable_page", f"page {pageno}: {type(e).__name__}: {e}", pageno))
            continue
        lines += page_lines
        for img in images:
            stem = img.name.rsplit(".", 1)[0].lstrip("/").split("/")[0]
            try:
                pil = img.image
            except Exception as e:  # JBIG2, broken streams: the image is counted, the paper goes on
                if not _raised_in_pypdf(e):
                    raise
                art.rejects.append(FigureReject(None, "unreadable_image", f"{img.name}: {type(e).__name__}: {e}", pageno))
                continue
            placed.append((pageno, float(page.mediabox.height), pil, boxes.get(stem), img.name))

    blocks = _blocks(lines)
    captions = [b for b in blocks if CAPTION_RE.match(b[0].text)]
    subcaps = [b for b in blocks if SUBCAP_RE.match(b[0].text)]
    soft = frozenset(id(ln) for b in subcaps for ln in b)
    body = [clean(" ".join(ln.text for ln in b)) for b in blocks if not CAPTION_RE.match(b[0].text)]
    text = "\n".join(clean(" ".join(ln.text for ln in b)) for b in blocks)
    art.doi = find_doi(meta.get("/doi"), *meta.values(), xmp, text)
    art.url = f"https://doi.org/{art.doi}" if art.doi else None
    page1 = "\n".join(ln.text for ln in lines if ln.page == 1)
    art.licence = normalise_licence(*meta.values(), xmp, page1, text)
    art.licence_raw = art.licence

    if not placed and not art.rejects:
        raise SourceError("no_images", f"no embedded images in {art.pages} page(s)")
    by_caption: dict[int, list] = {}
    for pageno, page_h, pil, box, name in placed:
        on_page = [c for c in captions if c[0].page == pageno]
        page_lines = [ln for ln in lines if ln.page == pageno]
        blk = _pair(box, on_page, page_lines, page_h, soft) if box else (on_page[0] if len(on_page) == 1 else None)
        if blk is None:
            why = "image position unknown" if box is None else "no 'Fig. N' caption next to it"
            art.rejects.append(FigureReject(None, "no_caption", f"{name} on page {pageno}: {why}", pageno))
            continue
        sub = _subcaption(box, [b for b in subcaps if b[0].page == pageno], page_h) if box else None
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
        # caption marks exactly that many panels; otherwise left unlettered.
        items.sort(key=lambda it: (-round(it[3][3] if it[3] else 0), it[3][0] if it[3] else 0))
        subs = [it[4] for it in items]
        own = all(subs) and len({s[0] for s in subs}) == len(subs)
        lettered = len(items) > 1 and len(panel_captions(caption)) == len(items)
        for i, (_, pageno, pil, _, sub) in enumerate(items):
            panel = sub[0] if own else letters(len(items))[i] if lettered else None
            art.figures.append(Figure(label=label, caption=f"{caption} {sub[1]}" if own else caption,
                                      excerpts=excerpts, image=pil, page=pageno, panel=panel))
    return art

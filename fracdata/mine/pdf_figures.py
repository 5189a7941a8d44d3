"""Which caption each image of a PDF page belongs to, and what names it as a panel.

One page at a time (pdf.py hands over the page's image boxes, lines, blocks and captions):
  furniture  text that belongs to a figure, not to the body: panel sub-captions and letters
             ("(a) SLM Ti-6Al-4V specimen", "b"), short panel titles just above or below an
             image ("As-built", "HIP 920 °C"), and any text drawn on an image (letters, scale
             bar lengths, labels). Furniture never separates an image from its caption;
  pairing    each image takes the nearest caption below it that overlaps it horizontally, else
             the nearest above (captions of tables and some journals sit above), with nothing
             but furniture in between and within 30% (below) / 15% (above) of the page height;
  grouping   an image farther than that from its caption (the top row of a 4 x 2 figure whose
             panels are separate images) takes the caption of the image straight below it when
             only furniture separates the two: a figure's images are grouped by the caption
             under them, however many rows they fill;
  naming     an image's panel letter and text come from its sub-caption, else from a letter
             printed on it (no text); a panel title without a letter gives text only.
"""

from __future__ import annotations

import re

from fracdata.papers import clean

# A panel's own sub-caption or label, printed under (or beside) its image: "(a) SLM Ti-6Al-4V
# specimen", "(b)", "c) wrought", "d". Upper-case letters as Cell and PLOS print them.
SUBCAP_RE = re.compile(r"^\(([a-zA-Z])\)(?:\s+\S.*)?$|^([a-zA-Z])\)\s+\S.*$|^([a-zA-Z])$")
SUBCAP_MAX = 0.08  # how far (fraction of page height) a sub-caption may sit below its image
BELOW_MAX, ABOVE_MAX = 0.3, 0.15  # how far (fraction of page height) a caption may sit from its image
TITLE_MAX_LINES, TITLE_MAX_CHARS = 2, 60  # a panel title is short: "Heat treated at 920 °C"
# line heights between a title's baseline and the image edge it names: a title's baseline sits
# a descender plus a few points over the image (<= 1.2 em), a sub-caption's an ascent plus a few
# points under it (<= 1.8 em); a paragraph ends a blank line (>= 2 em) away
TITLE_ABOVE, TITLE_BELOW = 1.2, 1.8
CHAIN_GAP = 0.25  # how far (fraction of page height) the images of one figure may sit apart


def _overlaps(x0, x1, box) -> bool:
    return x1 >= box[0] and x0 <= box[2]


def _inside(ln, box) -> bool:
    """Text drawn on the image: its baseline inside the box, its start inside it horizontally."""
    return box[1] - 1 <= ln.y <= box[3] + 1 and box[0] - 2 <= ln.x0 <= box[2]


def _title_of(blk, boxes):
    """(index of the image, 'above' | 'below') a short non-caption block names, or None."""
    if (len(blk) > TITLE_MAX_LINES or any(len(ln.text) > TITLE_MAX_CHARS for ln in blk)
            or blk[-1].text.rstrip().endswith(".")):  # a sentence is body text, not a title
        return None
    first, last = blk[0], blk[-1]
    x0, x1 = min(ln.x0 for ln in blk), max(ln.x1 for ln in blk)
    best = None
    for i, box in enumerate(boxes):
        if box is None or not _overlaps(x0, x1, box):
            continue
        above = last.y - box[3]  # the title's last baseline over the image's top edge
        below = box[1] - first.y  # the image's bottom edge over the sub-caption's first baseline
        for where, gap, most in (("above", above, TITLE_ABOVE), ("below", below, TITLE_BELOW)):
            if -0.2 * first.size <= gap <= most * first.size and (best is None or gap < best[0]):
                best = (gap, i, where)
    return best[1:] if best else None


def _pair(box, captions, lines, page_h, soft):
    """The caption block for an image box: the nearest below it, else above it, that overlaps
    it horizontally with no other text line in between (a paragraph between them means the
    caption belongs to another image). Lines in `soft` (figure furniture, by id) may sit in
    between: they belong to the same figure."""
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


def pair_page(boxes, captions, blocks, lines, page_h):
    """For each image box of one page (None: position unknown): (caption block or None,
    (letter or None, sub-caption or title text) or None)."""
    subcaps = [b for b in blocks if SUBCAP_RE.match(b[0].text)]
    soft = {id(ln) for b in subcaps for ln in b}
    soft |= {id(ln) for ln in lines for box in boxes if box is not None and _inside(ln, box)}
    titles: dict[int, list] = {}
    for blk in blocks:
        if blk in captions or blk in subcaps:
            continue
        named = _title_of(blk, boxes)
        if named is not None:
            soft |= {id(ln) for ln in blk}
            titles.setdefault(named[0], []).append(blk)

    paired = [(_pair(box, captions, lines, page_h, soft) if box is not None
               else captions[0] if len(captions) == 1 else None) for box in boxes]
    changed = True
    while changed:  # grouping: an image takes the caption of the figure image below it
        changed = False
        for i, box in enumerate(boxes):
            if paired[i] is not None or box is None:
                continue
            below = [(box[1] - other[3], j) for j, other in enumerate(boxes)
                     if j != i and other is not None and paired[j] is not None and _overlaps(box[0], box[2], other)
                     and -1 <= box[1] - other[3] <= CHAIN_GAP * page_h
                     and not any(other[3] < ln.y < box[1] and _overlaps(ln.x0, ln.x1, box) and id(ln) not in soft
                                 for ln in lines)]
            if below:
                paired[i] = paired[min(below)[1]]
                changed = True

    # a letter printed on an image names that image, never the one above it
    under = [b for b in subcaps if not any(bx is not None and _inside(b[0], bx) for bx in boxes)]
    out = []
    for i, box in enumerate(boxes):
        sub = _subcaption(box, under, page_h) if box is not None else None
        on_image = [b for b in subcaps if box is not None and _inside(b[0], box)]
        if sub is None and on_image:  # a letter printed on the image: it names the panel, adds no text
            m = SUBCAP_RE.match(max(on_image, key=lambda b: b[0].y)[0].text)
            sub = ((m.group(1) or m.group(2) or m.group(3)).lower(), "")
        if sub is None and titles.get(i):
            sub = (None, clean(" ".join(ln.text for blk in titles[i] for ln in blk)))
        out.append((paired[i], sub))
    return out

"""Multi-panel figures: split along gutters, letter the panels, find their captions.

Splitting is a recursive XY cut on the 8-bit image. A row (column) is a gutter when at least
99.5% of its pixels are near-white (>= 230) or at least 99.5% are near-black (<= 35): SEM
composites are often set on white with white gutters, or butted together with thin dark lines
between (one dust pixel per 200 does not break a gutter; the margins absorb JPEG's ringing
around a 2 px line). A cut is kept only when the gutter is at least `min_gutter` (2) px wide
and both sides are large enough: at least `min_frac` of the figure side, or, in a long strip
of panels (1 x 8), a quarter of the largest piece. Panel letters, titles, scale bars and the
microscope's data bar, printed in the gutter or cut off by a full-width dark row, are smaller
than that and stay with their panel instead of becoming panels of their own.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

WHITE, DARK = 230, 35
WHITE_FRACTION = 0.995
MAX_PANELS = 26  # a-z; a figure that splits into more is a chart or a table, kept whole
SMALL_OF_LARGEST = 0.25  # a piece under a quarter of the largest one on its axis is furniture, not a panel


def _gutter_profile(a: np.ndarray, axis: int) -> np.ndarray:
    """True for each row (axis=1) or column (axis=0) that is a white or a dark gutter."""
    return ((a >= WHITE).mean(axis=axis) >= WHITE_FRACTION) | ((a <= DARK).mean(axis=axis) >= WHITE_FRACTION)


def _cuts(white: np.ndarray, min_gutter: int, min_size: int) -> list[tuple[int, int]]:
    """Content intervals [start, end) between gutters, each >= the smaller of min_size and a
    quarter of the largest interval (and never under 32 px: see split_panels)."""
    n = len(white)
    spans, start = [], None
    for i, w in enumerate(white):
        if not w and start is None:
            start = i
        elif w and start is not None:
            spans.append([start, i])
            start = None
    if start is not None:
        spans.append([start, n])
    if not spans:
        return []
    # Merge content spans separated by a gutter narrower than min_gutter, or forming a piece
    # smaller than min_size (a panel letter, a scale bar caption): merge into the neighbour.
    merged = [spans[0]]
    for s in spans[1:]:
        if s[0] - merged[-1][1] < min_gutter:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    changed = True
    while changed and len(merged) > 1:
        changed = False
        floor, frac_size = min_size
        small = max(floor, min(frac_size, SMALL_OF_LARGEST * max(s[1] - s[0] for s in merged)))
        for i, s in enumerate(merged):
            if s[1] - s[0] < small:
                j = i - 1 if i > 0 and (i == len(merged) - 1 or
                                        s[0] - merged[i - 1][1] <= merged[i + 1][0] - s[1]) else i + 1
                lo, hi = min(s[0], merged[j][0]), max(s[1], merged[j][1])
                merged[min(i, j)] = [lo, hi]
                del merged[max(i, j)]
                changed = True
                break
    return [tuple(s) for s in merged]


def _xy_cut(a: np.ndarray, box, min_gutter, min_w, min_h, depth=0) -> list[tuple[int, int, int, int]]:
    left, top, right, bottom = box
    sub = a[top:bottom, left:right]
    rows = _cuts(_gutter_profile(sub, 1), min_gutter, min_h)
    cols = _cuts(_gutter_profile(sub, 0), min_gutter, min_w)
    if not rows or not cols:
        return []  # all gutter
    if len(rows) == 1 and len(cols) == 1 or depth >= 4:
        # one panel: its box trimmed to content (gutter-coloured margins dropped)
        return [(left + cols[0][0], top + rows[0][0], left + cols[-1][1], top + rows[-1][1])]
    out = []
    if len(rows) > 1:  # rows first: panels come out in reading order for grids
        for r0, r1 in rows:
            out += _xy_cut(a, (left, top + r0, right, top + r1), min_gutter, min_w, min_h, depth + 1)
    else:
        for c0, c1 in cols:
            out += _xy_cut(a, (left + c0, top, left + c1, bottom), min_gutter, min_w, min_h, depth + 1)
    return out


def split_panels(im: Image.Image, min_frac: float = 0.15, min_px: int = 32,
                 min_gutter: int = 2) -> list[tuple[int, int, int, int]]:
    """Panel boxes (left, top, right, bottom) in reading order; one box when not split."""
    a = np.asarray(im.convert("L"))
    h, w = a.shape
    min_w, min_h = (min_px, round(min_frac * w)), (min_px, round(min_frac * h))
    boxes = _xy_cut(a, (0, 0, w, h), min_gutter, min_w, min_h)
    if len(boxes) <= 1 or len(boxes) > MAX_PANELS:
        return [(0, 0, w, h)]
    # Reading order: rows of panels top to bottom (tops within 5% of the height are one row),
    # left to right within a row.
    boxes.sort(key=lambda b: (b[1], b[0]))
    rows, tol = [], 0.05 * h
    for b in boxes:
        if rows and abs(b[1] - rows[-1][0][1]) <= tol:
            rows[-1].append(b)
        else:
            rows.append([b])
    return [b for row in rows for b in sorted(row, key=lambda b: b[0])]


def letters(n: int) -> list[str]:
    return [chr(ord("a") + i) for i in range(n)]


# "(a) text", "(a, b) text", "(a-c) text", "a) text", and Springer's "a Text" after a sentence end.
_MARK_RE = re.compile(r"\(([a-z](?:\s*[,\u2013\u2014-]\s*[a-z])*)\)\s*|(?:(?<=^)|(?<=[\s;:,.]))([a-z])\)\s+|"
                      r"(?:(?<=^)|(?<=[.;:]\s))([a-z])\s+(?=[A-Z])")


def _mark_letters(inside: str) -> list[str]:
    """'a' -> [a]; 'a, b' -> [a, b]; 'a-c' -> [a, b, c]."""
    out = []
    for part in re.split(r"\s*,\s*", inside):
        ends = re.split(r"\s*[\u2013\u2014-]\s*", part)
        out += [chr(c) for c in range(ord(ends[0]), ord(ends[-1]) + 1)]
    return out


def panel_captions(caption: str) -> dict[str, str]:
    """{letter: caption for that panel} when the caption marks panels a, b, c, ... in order.

    The text before the first mark is shared context and prefixes every panel's caption:
    "Fig. 2. Fatigue fracture of 316L: (a) origin; (b) striations." ->
    {"a": "Fig. 2. Fatigue fracture of 316L: (a) origin",
     "b": "Fig. 2. Fatigue fracture of 316L: (b) striations."}
    A joint mark "(a, b) overview" gives both panels that text. Returns {} when the marks do
    not run a, b, c, ... without gaps (then every panel gets the whole caption).
    """
    marks = [(m.start(), _mark_letters(m.group(1)) if m.group(1) else [m.group(2) or m.group(3)])
             for m in _MARK_RE.finditer(caption)]
    flat = [x for _, ls in marks for x in ls]
    if len(flat) < 2 or flat != letters(len(flat)):
        return {}
    prefix = caption[:marks[0][0]].strip()
    out = {}
    for i, (start, ls) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(caption)
        text = re.sub(r"[\s;,]*(?:\b(?:and|&))?[\s;,]*$", "", caption[start:stop].strip())
        for letter in ls:
            out[letter] = f"{prefix} {text}".strip()
    return out

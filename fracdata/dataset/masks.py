"""Overlays that are not the specimen: the SEM data bar, lettering, arrows, scale bars, boxes.

The gold guard (overlap.py) compares specimens. Two fields imaged on one microscope share its
data bar pixel for pixel, and figures from one editor share panel letters and scale bars in the
same places: matched as texture, they make distinct images look like crops of each other
(issue 22: correlation 0.61 from the bar alone). So the guard finds them and leaves them out:

  bars     a strip along an edge (bottom on the microscope; any edge once rotated) whose rows
           are dominated by one grey level (the bar's background, +-TOL) or are uniform (a
           separator line), 3-30% of the image, above or beside rows that are not. A texture
           whose rows qualify for more than 30% of the image is a dark or smooth specimen,
           not a bar. Keypoints are taken only inside the rectangle the bars leave.
  strokes  lettering, arrows, circles, boxes and inset scale bars are drawn in flat, extreme
           grey (near-black or near-white, no sensor noise): pixels <= LOW or >= HIGH whose
           3x3 neighbourhood is within FLAT grey levels, dilated by 2 px for anti-aliasing.
           A saturated specimen patch is masked too; it carries no texture anyway. Strokes
           thinner than 3 px (small, anti-aliased or JPEG'd lettering) are left: the block
           median below outvotes them.

Both are discounted, not trusted: the pixel check scores blocks and takes their median
(overlap.py), so an overlay this misses is a few blocks out of dozens.
Measured on the synthetic overlays (tests/test_guard_overlays.py): docs/build.md.
"""

from __future__ import annotations

import numpy as np

TOL = 25  # grey levels around the bar's background (JPEG ringing, blurred small text)
ROW_SHARE = 0.3  # a bar row: >= 30% of it near the background (text covers the rest)
UNIFORM = 0.9  # or >= 90% near its own median (a separator line)
BAR_MIN, BAR_MAX = 0.03, 0.3  # of the image's extent across the strip
STEP, STEP_SHARE = 12, 0.75  # the bar's edge: a step of > 12 grey levels, one way, in >= 75% of the columns
LOW, HIGH = 12, 243  # overlay ink: drawn near-black or near-white ...
FLAT = 2  # ... and flat: a 3x3 neighbourhood within 2 grey levels (no sensor noise)
DILATE = 2  # px around strokes: their anti-aliased rims
BAR_SCAN = 640  # px: larger images are scanned for bars at ~512 px (a 1,024 px bar of 72 rows is 36 there)


def _rows_from_edge(a: np.ndarray) -> int:
    """How many rows at the bottom of `a` form a data bar (0: none)."""
    h = a.shape[0]
    lo, hi = max(3, int(np.ceil(BAR_MIN * h))), int(BAR_MAX * h)
    if hi < lo:
        return 0
    strip = a[h - hi - 2:].astype(np.int16)[::-1]  # bottom first, two rows past the limit
    base = max(1, lo // 3)
    bg = int(np.median(strip[:base]))  # the bar's background: its outermost rows are margin
    near = (np.abs(strip - bg) <= TOL).mean(1)
    med = np.median(strip, axis=1, keepdims=True)
    bar_row = (near >= ROW_SHARE) | ((np.abs(strip - med) <= TOL).mean(1) >= UNIFORM)
    if near[:base].mean() < 0.5:
        return 0
    ns = np.arange(lo, hi + 1)
    bad = np.cumsum(~bar_row)[ns - 1]
    mean_near = np.cumsum(near)[ns - 1] / ns
    # the bar's edge: one step across the whole width, the same way in most columns
    d = strip[ns] - strip[ns - 1]
    consistent = np.maximum((d > STEP).mean(1), (d < -STEP).mean(1))
    # a bar: most of its rows near the background, up to half of them text
    consistent[(bad > ns // 2) | (mean_near < 0.5)] = 0
    k = int(np.argmax(consistent))
    if consistent[k] <= STEP_SHARE:
        return 0
    return int(ns[k]) + 1  # + the row a blurred or JPEG-ringing edge smears into


def bars(a: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): rows/columns of data bar along each edge of a 2-D uint8 array.
    An image over BAR_SCAN px is scanned shrunk to ~512 px (a bar is tens of rows; the answer is
    scaled back and rounded out by one shrunk row)."""
    f = -(-max(a.shape) // 512) if max(a.shape) > BAR_SCAN else 1
    if f > 1:
        import cv2

        a = cv2.resize(a, (max(1, a.shape[1] // f), max(1, a.shape[0] // f)), interpolation=cv2.INTER_AREA)
    found = (_rows_from_edge(a[::-1]), _rows_from_edge(a), _rows_from_edge(a.T[::-1]), _rows_from_edge(a.T))
    return tuple((n + 1) * f if n and f > 1 else n for n in found)


def specimen_box(a: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the image without its data bars."""
    top, bottom, left, right = bars(a)
    h, w = a.shape
    return left, top, w - right, h - bottom


def overlay_mask(a: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(True where a pixel is overlay (bar, lettering, arrow, scale bar, box) rather than specimen,
    the specimen box (x0, y0, x1, y1) inside the bars)."""
    import cv2

    x0, y0, x1, y1 = specimen_box(a)
    mask = np.ones(a.shape, bool)
    inner = a[y0:y1, x0:x1]
    if inner.size:
        ext = (inner <= LOW) | (inner >= HIGH)
        k = np.ones((3, 3), np.uint8)
        flat = cv2.dilate(inner, k).astype(np.int16) - cv2.erode(inner, k) <= FLAT  # drawn ink, not sensed texture
        m = (ext & flat).astype(np.uint8)
        m = cv2.dilate(m, np.ones((2 * DILATE + 1, 2 * DILATE + 1), np.uint8))
        mask[y0:y1, x0:x1] = m > 0
    return mask, (x0, y0, x1, y1)

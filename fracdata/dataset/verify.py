"""The verdict on one candidate gold view: do these two images show one region of specimen?

1. Points: every training descriptor against every descriptor of this gold view that equals it
   on one 16-bit chunk (this pair of images only, so the verdict never depends on the other gold
   images), kept when <= MATCH_BITS apart, one pair per point on each side (the closest).
2. Geometry: a similarity transform (shift, rotation, uniform scale within SCALE_RANGE) that
   >= MIN_INLIERS distinct points agree on under RANSAC (or FEW_INLIERS, when the pixels below
   agree to FEW_CORRELATION: a 1/9 tile of sparse cleavage holds 6-9 points, at 0.85-0.95). Up to ROUNDS transforms are tried,
   each on the pairs the ones before left over: overlays the mask missed (a letter in the same
   corner of both) agree on the identity and would otherwise hide a smaller true match.
3. Pixels: where the transform lays one image on the other, the band-passed pixels (texture,
   not shading) are correlated block by block (BLOCK x BLOCK thumb px, specimen only), and the
   median over >= MIN_BLOCKS blocks must reach MIN_CORRELATION. Crops and tiles agree in nearly
   every block (0.8-1 after JPEG and rescaling); two fields that share a data bar, a scale bar
   and a letter agree only in the few blocks those cover, so their median stays near 0 even
   where the mask misses an overlay (issue 22: one correlation over all pixels reached 0.61).
Measured: benchmarks/perf/leak_guard.py, docs/build.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCH_BITS = 56  # of 256
MIN_INLIERS = 10  # distinct agreeing points (4 px cells on both sides) ...
FEW_INLIERS, FEW_CORRELATION = 6, 0.75  # ... or fewer (a small tile of sparse texture), with pixels that agree more
SCALE_RANGE = (1 / 8, 8.0)  # gold px per training px; further off is a degenerate fit
ROUNDS = 3
BLOCK = 16  # thumb px
MIN_BLOCKS = 8
MIN_BLOCK_SPECIMEN = 0.5  # share of a block that must be specimen (in both) to be scored
MIN_CORRELATION = 0.5  # median block correlation
MIN_BLOCK_VAR = 1.0  # band-passed variance (grey levels^2) below which a block is flat
BANDS = ((1.0, 4.0), (3.0, 12.0))  # sigmas (thumb px) of the two bands compared: texture, and what it sits on


@dataclass(frozen=True)
class Found:
    inliers: int
    scale: float
    correlation: float


def pairs(q, g) -> tuple[np.ndarray, np.ndarray]:
    """(query index, gold index): for each gold point the closest query descriptor <= MATCH_BITS away
    among those equal to it on one of the 16 16-bit chunks (and one per query point: the closest).
    ~1 ms for 1,000 x 1,000 descriptors, where OpenCV's brute force takes ~7."""
    if len(q.descriptors) == 0 or len(g.descriptors) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    # the 16 chunks of every descriptor as one sorted array of (chunk number, value) keys: one search for all
    cq = np.ascontiguousarray(q.descriptors).view(np.uint16).reshape(-1, 16).astype(np.int64) + (np.arange(16) << 16)
    cg = np.ascontiguousarray(g.descriptors).view(np.uint16).reshape(-1, 16).astype(np.int64) + (np.arange(16) << 16)
    order = np.argsort(cg.ravel(), kind="stable")
    s = cg.ravel()[order]
    qk = cq.ravel()
    lo = np.searchsorted(s, qk, "left")
    n = np.searchsorted(s, qk, "right") - lo
    total = int(n.sum())
    if not total:
        return np.zeros(0, int), np.zeros(0, int)
    qi = np.repeat(np.arange(len(qk)) // 16, n)
    gi = order[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)] // 16
    key = np.unique(qi * len(cg) + gi)  # a pair equal on several chunks: once
    qi, gi = key // len(cg), key % len(cg)
    d = np.bitwise_count(np.ascontiguousarray(q.descriptors).view(np.uint64).reshape(-1, 4)[qi]
                         ^ np.ascontiguousarray(g.descriptors).view(np.uint64).reshape(-1, 4)[gi]).sum(1)
    keep = d <= MATCH_BITS
    qi, gi, d = qi[keep], gi[keep], d[keep]
    for side in (0, 1):  # one pair per point on each side: the closest, then the first
        a, b = (qi, gi) if side == 0 else (gi, qi)
        first = np.lexsort((b, d, a))
        first = first[np.r_[True, a[first][1:] != a[first][:-1]]] if len(first) else first
        qi, gi, d = qi[first], gi[first], d[first]
    return qi, gi


def _distinct(p: np.ndarray) -> int:
    return len(np.unique(np.round(p / 4), axis=0))


def match(q, g) -> Found | None:
    """q: the training image's Keypoints; g: a gold view's. Found, or None."""
    import cv2

    qi, gi = pairs(q, g)
    src, dst = q.points[qi], g.points[gi]
    for _ in range(ROUNDS):
        if len(src) < FEW_INLIERS:
            return None
        cv2.setRNGSeed(0)  # RANSAC draws samples: the same build gives the same verdict
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0,
                                             maxIters=2000, confidence=0.995)
        if m is None:
            return None
        inl = inl.ravel().astype(bool)
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        n = min(_distinct(src[inl]), _distinct(dst[inl]))
        if n < FEW_INLIERS:
            return None
        if SCALE_RANGE[0] < scale < SCALE_RANGE[1]:
            r, _ = block_correlation(q, g, m)
            if r >= (MIN_CORRELATION if n >= MIN_INLIERS else FEW_CORRELATION):
                return Found(n, round(scale, 3), round(r, 2))
        src, dst = src[~inl], dst[~inl]
    return None


def _highpass(t: np.ndarray, band: tuple[float, float] = (1.0, 4.0)) -> np.ndarray:
    import cv2

    # a band (sigma 1 to 4 thumb px): texture, neither shading nor the pixel noise that resampling changes
    return cv2.GaussianBlur(t, (0, 0), band[0]) - cv2.GaussianBlur(t, (0, 0), band[1])


def block_correlation(q, g, m: np.ndarray) -> tuple[float, int]:
    """(median block correlation, blocks scored) where `m` (q px -> g px) lays q on g, compared in
    the frame of whichever shows the shared region with more thumb pixels (a 1/9 tile is a few
    blocks of its parent's thumb, but its own thumb is all overlap)."""
    a = np.vstack([m.astype(np.float64), [0, 0, 1]])
    a = np.diag([g.factor, g.factor, 1]) @ a @ np.diag([1 / q.factor, 1 / q.factor, 1])  # q thumb -> g thumb
    if abs(np.linalg.det(a[:2, :2])) < 1:  # q's thumb is finer there: compare in q's frame
        return _blocks(g, q, np.linalg.inv(a)[:2])
    return _blocks(q, g, a[:2])


def _blocks(src_kp, dst_kp, a: np.ndarray) -> tuple[float, int]:
    """Median block correlation of src's thumb warped by `a` (src thumb px -> dst thumb px) onto dst's."""
    import cv2

    h, w = dst_kp.thumb.shape
    shrink = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))  # dst px per src px
    src, dst = src_kp.thumb.astype(np.float32), dst_kp.thumb.astype(np.float32)
    if shrink < 0.8:  # src is drawn smaller: blur it first (no aliasing)
        src = cv2.GaussianBlur(src, (0, 0), 0.5 / shrink)
    elif shrink > 1.25:  # src is drawn larger, so blurrier: blur dst alike (compare one resolution)
        dst = cv2.GaussianBlur(dst, (0, 0), 0.5 * shrink)
    warped = cv2.warpAffine(src, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    svalid = cv2.warpAffine(src_kp.valid.astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    valid = (svalid > 0) & dst_kp.valid
    valid = cv2.erode(valid.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0  # off the edges, where the band-pass smears
    H, W = -(-h // BLOCK) * BLOCK, -(-w // BLOCK) * BLOCK

    def blocks(v):  # (rows, cols, BLOCK * BLOCK), zero-padded to whole blocks
        p = np.zeros((H, W), np.float64)
        p[:h, :w] = v
        return p.reshape(H // BLOCK, BLOCK, W // BLOCK, BLOCK).swapaxes(1, 2).reshape(H // BLOCK, W // BLOCK, -1)

    v = blocks(valid)
    n = v.sum(-1)
    medians, counts = [], []
    for band in BANDS:  # each band on its own: two look-alike pores agree in the fine band, not around them
        bx, by = blocks(_highpass(warped, band)) * v, blocks(_highpass(dst, band)) * v
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = bx.sum(-1) / n, by.sum(-1) / n
            sxy = (bx * by).sum(-1) / n - mx * my
            sxx = (bx * bx).sum(-1) / n - mx * mx
            syy = (by * by).sum(-1) / n - my * my
            r = sxy / np.sqrt(sxx * syy)
        scored = (n >= MIN_BLOCK_SPECIMEN * BLOCK * BLOCK) & (sxx > MIN_BLOCK_VAR) & (syy > MIN_BLOCK_VAR)  # flat blocks say nothing
        if scored.sum() < MIN_BLOCKS:
            return 0.0, int(scored.sum())
        medians.append(float(np.median(r[scored])))
        counts.append(int(scored.sum()))
    return min(medians), min(counts)

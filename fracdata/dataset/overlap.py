"""The crop-proof half of the gold guard: does a training image share a region with a gold image?

A perceptual hash of the whole image (dedup.py) finds copies, rotations, flips and re-encodes,
but not a crop: an 80% crop already moves a phash ~20 of 64 bits. Here each image gets ORB
keypoints (OpenCV: corners with a rotation-invariant binary descriptor, at 10 scales 1.2x
apart), every training image's keypoints are looked up among those of all gold images (and
of their mirror images), and a gold image is matched when enough of the pairs agree on one
similarity transform (RANSAC: shift, rotation, uniform scale) and the pixels agree where that
transform lays one image on the other (correlation of band-passed 256 px thumbnails >= 0.6:
two fish-eyes' keypoints can agree on a centre and a scale, their textures do not). A crop, a
tile, a scaled crop, and the reverse (a training image cut from a gold one) pass both tests;
unrelated images do not (measured: benchmarks/perf/leak_guard.py, and docs/build.md).

Lookup: descriptors are 256 bits; a match differs in ~0-40 bits. The gold descriptors are
filed under each of their 16 16-bit chunks (16 sorted tables), so a query finds every gold
descriptor that equals it on one chunk: for a true match 20 bits away, 1 - (1 - (1 - 20/256)^16)^16
= 99% are found; candidates are then kept when <= MAX_BITS apart. That is 16 x 1,000 binary
searches per training image instead of 1,000 x 200,000 comparisons, and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORK_MIN_SIDE = 128  # px: smaller images are enlarged for keypoints only (ORB's patch is 31 px)
WORK_MAX_SIDE = 1024  # px: larger ones are shrunk (the mined images are <= 1024 already)
N_TRAIN = 1000  # keypoints per training image: a gold quarter crop of it holds ~250 of them
N_GOLD = 1000  # per gold image (and as many for its mirror image)
MAX_BITS = 40  # of 256: ORB pairs of one point under scale/JPEG differ by ~0-40 bits
MIN_INLIERS = 12  # distinct agreeing points; unrelated pairs reach at most 7 (docs/build.md)
SCALE_RANGE = (1 / 8, 8.0)  # a similarity further off is a degenerate fit, not a crop
FAST_THRESHOLD = 5  # FAST corner contrast (of 255), after histogram equalisation
MAX_BUCKET = 32  # chunk values held by more gold descriptors are skipped (flat patches share them);
# uniform bits would put ~3 of 200,000 in a bucket, real ORB bits put ~9x more on a query's chunks
THUMB_SIDE = 256  # px: the pixel check compares textures at this size
MIN_CORRELATION = 0.6  # of the band-passed pixels where the two overlap: crops 0.9-1 (JPEG, rescaled), look-alikes lower
MIN_KEYPOINTS = 50  # a gold image with fewer (a smooth, featureless surface) is only weakly guarded against crops


@dataclass(frozen=True)
class Keypoints:
    points: np.ndarray  # (n, 2) float32, in the image's own pixels
    descriptors: np.ndarray  # (n, 32) uint8 ORB descriptors
    thumb: np.ndarray  # (h, w) float32 grayscale, longest side <= THUMB_SIDE px
    factor: float  # thumb px per image px


@dataclass(frozen=True)
class Overlap:
    gold: str  # gold id
    inliers: int  # distinct points that agree on one transform
    scale: float  # gold pixels per training pixel
    mirrored: bool  # matched the gold image's mirror image
    correlation: float  # of the high-passed pixels where the two overlap


def _detector(n: int):
    import cv2

    cv2.setNumThreads(1)  # the builder's workers are the parallelism
    return cv2.ORB_create(nfeatures=n, scaleFactor=1.2, nlevels=10, edgeThreshold=31, patchSize=31, fastThreshold=FAST_THRESHOLD)


def keypoints(im, n: int) -> Keypoints:
    """ORB keypoints of a normalised PIL image, in its own pixel coordinates."""
    import cv2

    a = cv2.equalizeHist(np.asarray(im.convert("L")))  # full contrast: FAST's threshold means the
    h, w = a.shape  # same on a dim image; BRIEF's intensity tests are unchanged by a monotone map
    s = 1.0
    if min(h, w) < WORK_MIN_SIDE:
        s = WORK_MIN_SIDE / min(h, w)
    if max(h, w) * s > WORK_MAX_SIDE:
        s = WORK_MAX_SIDE / max(h, w)
    if s != 1.0:
        a = cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    kp, des = _detector(n).detectAndCompute(a, None)
    thumb, factor = _thumb(np.asarray(im.convert("L")))
    if des is None or not kp:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), thumb, factor)
    return Keypoints(np.float32([k.pt for k in kp]) / s, des, thumb, factor)


def _thumb(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Grayscale shrunk so the longest side is <= THUMB_SIDE; (thumb, thumb px per image px)."""
    import cv2

    h, w = a.shape
    f = min(1.0, THUMB_SIDE / max(h, w))
    t = cv2.resize(a, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else a
    return t.astype(np.float32), f


def _highpass(t: np.ndarray) -> np.ndarray:
    import cv2

    # a band (sigma 1 to 4 thumb px): texture, neither shading nor the pixel noise that resampling changes
    return cv2.GaussianBlur(t, (0, 0), 1.0) - cv2.GaussianBlur(t, (0, 0), 4.0)


def correlation(query: Keypoints, gold: Keypoints, m: np.ndarray) -> float:
    """Pearson correlation of the two thumbs where `m` (query px -> gold px) lays one on the other.

    Keypoints of two different fish-eyes can agree on a transform (a central inclusion, radial
    lines); their pixels do not. Copies and crops correlate 0.8-1 even after JPEG and rescaling.
    """
    import cv2

    a = m.astype(np.float64).copy()
    a[:, :2] *= gold.factor / query.factor  # query-thumb px -> gold-thumb px
    a[:, 2] *= gold.factor
    h, w = gold.thumb.shape
    shrink = float(np.hypot(a[0, 0], a[1, 0]))  # < 1: the query is drawn smaller; blur it first (no aliasing)
    src = cv2.GaussianBlur(query.thumb, (0, 0), 0.5 / shrink) if shrink < 0.8 else query.thumb
    warped = cv2.warpAffine(src, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(query.thumb.shape, np.uint8), a, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    inside = cv2.erode(inside, np.ones((11, 11), np.uint8)) > 0  # off the edges, where the high-pass smears
    if inside.sum() < 256:  # less than 16 x 16 thumb px in common: nothing to compare
        return 0.0
    x, y = _highpass(warped)[inside], _highpass(gold.thumb)[inside]  # one band, in one frame
    x, y = x - x.mean(), y - y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else 0.0


class GoldIndex:
    """Every gold image's keypoints (and its mirror image's), filed for chunk lookups. Picklable."""

    def __init__(self, gold: dict[str, tuple[Keypoints, Keypoints]]):
        self.ids = list(gold)
        pts, des, owner = [], [], []
        none = (np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
        # owner 2k + flip: the thumb for the pixel check (points and descriptors live in the tables below)
        self.views = [Keypoints(*none, kp.thumb, kp.factor) for gid in self.ids for kp in gold[gid]]
        for k, gid in enumerate(self.ids):
            for flip, kp in enumerate(gold[gid]):
                pts.append(kp.points)
                des.append(kp.descriptors)
                owner.append(np.full(len(kp.points), 2 * k + flip, np.int32))
        self.points = np.concatenate(pts) if pts else np.zeros((0, 2), np.float32)
        d = np.concatenate(des) if des else np.zeros((0, 32), np.uint8)
        self.words = np.ascontiguousarray(d).view(np.uint64).reshape(-1, 4)
        self.owner = np.concatenate(owner) if owner else np.zeros(0, np.int32)
        chunks = np.ascontiguousarray(d).view(np.uint16).reshape(-1, 16)
        self.order = np.argsort(chunks, axis=0, kind="stable").T.astype(np.int32)  # (16, N)
        self.sorted = np.take_along_axis(chunks, self.order.T, axis=0).T.copy()  # (16, N)

    def __len__(self) -> int:
        return len(self.ids)

    def candidates(self, kp: Keypoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, gold descriptor index, bits) of every pair equal on a chunk and <= MAX_BITS apart."""
        if not len(kp.points) or not len(self.owner):
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
        q = np.ascontiguousarray(kp.descriptors).view(np.uint16).reshape(-1, 16)
        qi, gi = [], []
        for c in range(16):
            lo = np.searchsorted(self.sorted[c], q[:, c], "left")
            hi = np.searchsorted(self.sorted[c], q[:, c], "right")
            n = hi - lo
            n[n > MAX_BUCKET] = 0  # a chunk value that many gold descriptors share says little: skip it
            if not n.sum():
                continue
            rows = np.repeat(np.arange(len(q)), n)
            offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
            qi.append(rows)
            gi.append(self.order[c][np.repeat(lo, n) + offs])
        if not qi:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
        key = np.concatenate(qi).astype(np.int64) * len(self.owner) + np.concatenate(gi)
        key.sort()  # a pair equal on several chunks is found several times: keep one (sort: ~3x np.unique's hash)
        key = key[np.r_[True, key[1:] != key[:-1]]]
        pairs = np.stack([key // len(self.owner), key % len(self.owner)], 1)
        qw = np.ascontiguousarray(kp.descriptors).view(np.uint64).reshape(-1, 4)
        bits = np.bitwise_count(qw[pairs[:, 0]] ^ self.words[pairs[:, 1]]).sum(1)
        keep = bits <= MAX_BITS
        return pairs[keep, 0], pairs[keep, 1], bits[keep]

    def query(self, kp: Keypoints) -> tuple[Overlap, ...]:
        """The gold images this training image shares a region with (sorted by gold id)."""
        import cv2

        qi, gi, bits = self.candidates(kp)
        if not len(qi):
            return ()
        found: dict[str, Overlap] = {}
        owners = self.owner[gi]
        counts = np.bincount(owners)
        for o in np.flatnonzero(counts >= MIN_INLIERS):  # most gold images meet a query by chance only
            sel = owners == o
            a, b, d = qi[sel], gi[sel], bits[sel]
            # one pair per query point and per gold point: the closest (then the first, for determinism)
            first = np.lexsort((b, d, a))
            a, b, d = a[first], b[first], d[first]
            keep_a = np.r_[True, a[1:] != a[:-1]]
            a, b, d = a[keep_a], b[keep_a], d[keep_a]
            first = np.lexsort((a, d, b))
            a, b = a[first], b[first]
            keep_b = np.r_[True, b[1:] != b[:-1]]
            a, b = a[keep_b], b[keep_b]
            if len(a) < MIN_INLIERS:
                continue
            src, dst = kp.points[a], self.points[b]
            cv2.setRNGSeed(0)  # RANSAC draws samples: the same build gives the same verdict
            m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0,
                                                 maxIters=2000, confidence=0.995)
            if m is None:
                continue
            scale = float(np.hypot(m[0, 0], m[1, 0]))
            if not SCALE_RANGE[0] < scale < SCALE_RANGE[1]:
                continue
            inl = inl.ravel().astype(bool)
            # distinct points on both sides (4 px cells): ORB finds one corner at several scales
            n = min(len(np.unique(np.round(src[inl] / 4), axis=0)), len(np.unique(np.round(dst[inl] / 4), axis=0)))
            if n < MIN_INLIERS:
                continue
            r = correlation(kp, self.views[int(o)], m)
            if r < MIN_CORRELATION:
                continue
            gid = self.ids[int(o) // 2]
            if gid not in found or n > found[gid].inliers:
                found[gid] = Overlap(gid, n, round(scale, 3), bool(o % 2), round(r, 2))
        return tuple(found[g] for g in sorted(found))


def gold_keypoints(im) -> tuple[Keypoints, Keypoints]:
    """A gold image's keypoints and its mirror image's (ORB is rotation- but not mirror-invariant)."""
    from PIL import Image

    flipped = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return keypoints(im, N_GOLD), keypoints(flipped, N_GOLD)

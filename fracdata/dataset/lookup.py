"""Which gold images to verify for a training image: an index of every gold descriptor, and votes.

A training image's descriptors are looked up among those of all gold images
(and their mirror images): descriptors are 256 bits and a match differs in ~0-40; the gold
descriptors are filed under each of their 16 16-bit chunks (16 sorted tables), so a query finds
every gold descriptor that equals it on one chunk (for a true match 20 bits away, 1 - (1 - (1 -
20/256)^16)^16 = 99% are found), kept when <= MAX_BITS apart. Every pair is kept, however many
gold descriptors share a chunk: which gold images become candidates depends on the training
image and that gold image only, never on how many other gold images are indexed (issue 22:
a bucket cap made 136 gold images miss matches that 8 or 32 found).
Stage 1 looks up N_PROBE of the training image's keypoints, spread over it and over ORB's
scales (`probes`), and a gold view is verified (verify.py) when >= MIN_VOTES of them agree on
one similarity transform (a Hough vote over rotation, scale and translation from ORB's angles,
sizes and positions; distinct images' votes stay at 0-5: docs/build.md). Chunk values that occur
more than REPEATS times in one image are not looked up (`unique_chunks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fracdata.dataset.overlap import Keypoints, Overlap

N_PROBE = 1000  # of the training image's, spread over it, looked up in the index (stage 1)
MAX_BITS = 48  # of 256: ORB pairs of one point under scale/JPEG differ by ~0-40 bits
MIN_VOTES = 4  # probe points agreeing on one similarity in a gold view before it is verified
REPEATS = 1  # a key that occurs more often in one image is not looked up (repeated structure)
TABLES, KEY_BITS = 16, 24  # lookup tables, each keyed by 24 of the 256 bits (3 bytes: LSH by bit sampling)
DIRECTORY, DIR_BITS = 50_000, 20  # from this many descriptors a table gets a directory on 20 of the key's
# bits (2^20 entries, 4 MB) instead of a binary search; entries found there are then checked on all 24  # lookup tables, each keyed by 24 of the 256 bits (LSH by bit sampling)
ANGLE_BIN, SCALE_BIN = 30.0, float(np.log(1.44))  # degrees; two ORB pyramid levels
TRANSLATION_BIN = 0.5  # of the gold view's longer side
AGREE_PX = 2.0  # the pre-check's RANSAC threshold is 2x this (4 px; verify.py's is 3 px on all pairs)
MIN_SPREAD = 0.05  # the agreeing points' hull / the shared region: overlays in one place cover less


@dataclass(frozen=True)
class Probe:
    """The N_PROBE keypoints of an image that are looked up in an index (stage 1), kept for every image of
    a build for the split's own region check (regions.py): ~48 KB for 1,000 (keys are recomputed)."""
    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 32) uint8
    angles: np.ndarray  # (n,) float32 degrees
    sizes: np.ndarray  # (n,) float32
    ok_bits: np.ndarray  # (n, 2) uint8: np.packbits of (n, TABLES) "the key occurs once in the whole image"

    @property
    def keys(self) -> np.ndarray:
        return keys(self.descriptors)

    @property
    def ok(self) -> np.ndarray:
        return np.unpackbits(self.ok_bits, axis=1, count=TABLES).astype(bool)


def _byte_sample() -> np.ndarray:
    """(TABLES, 3) descriptor bytes per table: fixed (seed 0), so every build files alike. ORB's 256
    bits are 256 different intensity tests, so 3 whole bytes sample 24 of them as well as 24 loose
    bits would, and a key is 3 byte reads instead of 24 bit gathers."""
    rng = np.random.default_rng(0)
    return np.stack([rng.choice(32, KEY_BITS // 8, replace=False) for _ in range(TABLES)])


BYTES = _byte_sample()


def keys(des: np.ndarray) -> np.ndarray:
    """(n, TABLES) uint32: each descriptor's 3 sampled bytes per table, as one 24-bit key."""
    d = des[:, BYTES].astype(np.uint32)  # (n, TABLES, 3)
    return d[..., 0] | (d[..., 1] << 8) | (d[..., 2] << 16)


def unique_keys(k: np.ndarray) -> np.ndarray:
    """(n, TABLES) bool: the key occurs once in this image's table. Repeated keys come from repeated
    structure (striations, rows of dimples) and match everywhere; leaving them out keeps distinct
    images' votes low. A property of the one image, so what matches never depends on the other
    images indexed."""
    flat = (k.astype(np.int64) + (np.arange(k.shape[1], dtype=np.int64) << 24)).ravel()  # (table, key): one sort
    _, inv, cnt = np.unique(flat, return_inverse=True, return_counts=True)
    return (cnt[inv] <= REPEATS).reshape(k.shape)


def probes(kp: Keypoints, n: int = N_PROBE) -> np.ndarray:
    """Indices of n keypoints spread over the image and over ORB's scales: round robin over the
    cells of a 6 x 6 grid and the pyramid levels, strongest first in each, so any region of 1/9 of
    the image holds ~n/9 of them, at every scale (a zoom's partner sees its coarse levels only)."""
    if len(kp.points) <= n:
        return np.arange(len(kp.points))
    lo, hi = kp.points.min(0), kp.points.max(0) + 1e-3
    cell = np.floor((kp.points - lo) / (hi - lo) * 6).astype(int)
    level = np.round(np.log(kp.sizes / kp.sizes.min()) / np.log(1.2)).astype(int)
    key = (cell[:, 1] * 6 + cell[:, 0]) * 64 + level
    rank = np.zeros(len(key), int)  # ORB lists each level's keypoints strongest first; keep that order
    order = np.argsort(key, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(key[order])) + 1]
    rank[order] = np.arange(len(key)) - np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    return np.sort(np.lexsort((np.arange(len(key)), rank))[:n])


def probe_set(kp: Keypoints) -> Probe:
    sel = probes(kp)
    ok = unique_keys(keys(kp.descriptors))[sel]
    return Probe(kp.points[sel], kp.descriptors[sel], kp.angles[sel], kp.sizes[sel],
                 np.packbits(ok, axis=1))


def _spread(points: np.ndarray, m: np.ndarray, p: Probe, view: Keypoints) -> float:
    """Area of the agreeing gold points' convex hull / area of the region the two images share (the
    training image's frame laid on the gold view by m): a true crop's points cover its region; a
    letter or scale bar both images carry in one place covers a few percent of theirs."""
    import cv2

    if len(points) < 3:
        return 0.0
    h, w = view.thumb.shape
    gold = np.float32([[0, 0], [w, 0], [w, h], [0, h]]) / view.factor
    lo, hi = p.points.min(0), p.points.max(0)  # the training image's keypoint extent: its specimen
    corners = np.float32([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    mapped = (corners @ m[:, :2].T + m[:, 2]).astype(np.float32)
    shared, _ = cv2.intersectConvexConvex(gold, mapped)
    hull = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
    return float(hull / shared) if shared > 0 else 0.0


class GoldIndex:
    """Every gold image's keypoints (and its mirror image's), filed for chunk lookups. Picklable."""

    def __init__(self, gold: dict[str, tuple[Keypoints, ...]]):
        self.ids = list(gold)
        self.views = [kp for gid in self.ids for kp in gold[gid]]  # view 2k + flip
        self.flips = max((len(v) for v in gold.values()), default=1)
        des = [v.descriptors for v in self.views]
        counts = np.array([len(d) for d in des], np.int64)
        d = np.concatenate(des) if des else np.zeros((0, 32), np.uint8)
        self.owner = np.repeat(np.arange(len(des), dtype=np.int32), counts)
        self.angles = np.concatenate([v.angles for v in self.views]) if des else np.zeros(0, np.float32)
        self.sizes = np.concatenate([v.sizes for v in self.views]) if des else np.zeros(0, np.float32)
        self.points = np.concatenate([v.points for v in self.views]) if des else np.zeros((0, 2), np.float32)
        # per view: the translation bin, TRANSLATION_BIN of its longer side (image px)
        self.tbin = np.array([TRANSLATION_BIN * max(v.thumb.shape) / v.factor for v in self.views], np.float64)
        self.words = np.ascontiguousarray(d).view(np.uint64).reshape(-1, 4)
        k = [keys(x) for x in des]
        keep = np.concatenate([unique_keys(x) for x in k]) if des else np.zeros((0, TABLES), bool)
        k = np.concatenate(k) if des else np.zeros((0, TABLES), np.uint32)
        # every (table, key) of every kept entry in one sorted array: key + table << 24
        rows, tables = np.nonzero(keep)
        full = k[rows, tables].astype(np.int64) + (tables.astype(np.int64) << KEY_BITS)
        if len(full) >= DIRECTORY:  # sorted by (table, low 20 bits, key): start[] finds a bucket without a search
            low = (tables.astype(np.int64) << DIR_BITS) + (full & ((1 << DIR_BITS) - 1))
            order = np.lexsort((full, low))
            self.start = np.r_[0, np.cumsum(np.bincount(low, minlength=TABLES << DIR_BITS))].astype(np.int64)
        else:
            order = np.argsort(full, kind="stable")
            self.start = None
        self.sorted, self.entry = full[order], rows[order].astype(np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    def view(self, v: int) -> tuple[str, bool, Keypoints]:
        return self.ids[v // self.flips], bool(v % self.flips), self.views[v]

    def _close_pairs(self, p: Probe) -> tuple[np.ndarray, np.ndarray]:
        """(gold descriptor, probe) pairs equal on a table's key and <= MAX_BITS apart: every one, however
        many gold descriptors share the key, so a view's pairs depend on the training image and that
        view only (module doc). A pair equal on 2 keys comes twice: harmless, votes count distinct probes."""
        none = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if not len(p.points) or not len(self.owner):
            return none
        rows, tables = np.nonzero(p.ok)
        qk = p.keys[rows, tables].astype(np.int64) + (tables.astype(np.int64) << KEY_BITS)
        if self.start is not None:
            low = (tables.astype(np.int64) << DIR_BITS) + (qk & ((1 << DIR_BITS) - 1))
            lo = self.start[low]
            n = self.start[low + 1] - lo
        else:
            lo = np.searchsorted(self.sorted, qk, "left")
            n = np.searchsorted(self.sorted, qk, "right") - lo
        total = int(n.sum())
        if not total:
            return none
        pos = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)
        same = self.sorted[pos] == np.repeat(qk, n)  # all 24 bits (a directory bucket matched 20)
        gi, qi = self.entry[pos[same]].astype(np.int64), np.repeat(rows, n)[same].astype(np.int64)
        qw = np.ascontiguousarray(p.descriptors).view(np.uint64).reshape(-1, 4)
        close = np.bitwise_count(qw[qi] ^ self.words[gi]).sum(1) <= MAX_BITS
        return gi[close], qi[close]

    def _hough(self, p: Probe):
        """(votes per view, the best bin's pairs per view): each pair proposes a similarity (rotation
        and scale from ORB's angles and sizes, the translation that maps its points); a view's votes are
        the most distinct probes in one bin of ANGLE_BIN x SCALE_BIN x TRANSLATION_BIN, on 8 grids
        shifted by half a bin (a true transform near a bin's edge still falls inside one)."""
        out = np.zeros(len(self.views), np.int64)
        gi, qi = self._close_pairs(p)
        if not len(gi):
            return out, {}
        theta = np.radians(self.angles[gi] - p.angles[qi])
        scale = self.sizes[gi] / p.sizes[qi]
        x, g = p.points[qi].astype(np.float64), self.points[gi].astype(np.float64)
        tx = g[:, 0] - scale * (np.cos(theta) * x[:, 0] - np.sin(theta) * x[:, 1])
        ty = g[:, 1] - scale * (np.sin(theta) * x[:, 0] + np.cos(theta) * x[:, 1])
        owner = self.owner[gi].astype(np.int64)
        da, ls, tb = np.degrees(theta) % 360 / ANGLE_BIN, np.log(scale) / SCALE_BIN, self.tbin[owner]
        na = int(round(360 / ANGLE_BIN))
        nb, n_probe = na * 64 ** 3, len(p.points)
        best: dict[int, np.ndarray] = {}
        for off in ((0, 0, 0), (0.5, 0, 0), (0, 0.5, 0), (0.5, 0.5, 0), (0, 0, 0.5), (0.5, 0, 0.5), (0, 0.5, 0.5), (0.5, 0.5, 0.5)):
            b = np.floor(da + off[0]).astype(np.int64) % na
            b = b * 64 + np.clip(np.floor(ls + off[1]).astype(np.int64) + 32, 0, 63)
            b = b * 64 + np.clip(np.floor(tx / tb + off[2]).astype(np.int64) + 32, 0, 63)
            b = b * 64 + np.clip(np.floor(ty / tb + off[2]).astype(np.int64) + 32, 0, 63)
            cell = owner * nb + b
            u, cnt = np.unique(np.unique(cell * n_probe + qi) // n_probe, return_counts=True)  # distinct probes per bin
            views = u // nb
            top = np.zeros(len(out), np.int64)
            np.maximum.at(top, views, cnt)
            for v in np.flatnonzero((top > out) & (top >= MIN_VOTES)).tolist():  # the few that can be candidates
                at = np.flatnonzero(views == v)
                best[v] = cell == u[at[np.argmax(cnt[at])]]
            out = np.maximum(out, top)
        return out, {v: (qi[m], gi[m]) for v, m in best.items()}

    def votes(self, p: Probe) -> np.ndarray:
        """Per gold view: the most probe points that agree on one similarity (`_hough`)."""
        return self._hough(p)[0]

    def candidates(self, p: Probe, stats: dict | None = None) -> list[int]:
        """Views with >= MIN_VOTES votes whose best bin's points also agree to AGREE_PX on one
        similarity (RANSAC over a handful of pairs: ~0.1 ms): distinct images that share a coarse bin
        by chance rarely do, so the full verification (verify.py, ~10 ms) runs on few views."""
        import cv2

        votes, pairs = self._hough(p)
        out = []
        voted = np.flatnonzero(votes >= MIN_VOTES).tolist()
        if stats is not None:
            stats["pairs"] = stats.get("pairs", 0) + len(self.ids)
            stats["voted"] = stats.get("voted", 0) + len({self.view(v)[0] for v in voted})
        for v in voted:
            qi, gi = pairs[v]
            src, dst = p.points[qi], self.points[gi]
            cv2.setRNGSeed(0)
            m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=AGREE_PX * 2,
                                                 maxIters=200, confidence=0.99)
            if m is None:
                continue
            inl = inl.ravel().astype(bool)
            if len(np.unique(qi[inl])) >= MIN_VOTES and _spread(dst[inl], m, p, self.views[v]) >= MIN_SPREAD:
                out.append(v)
        return out

    def query(self, kp: Keypoints, p: Probe | None = None, stats: dict | None = None) -> tuple[Overlap, ...]:
        """The gold images this training image shares a region of specimen with (sorted by gold id).
        stats: counts added up over calls (pairs looked at, voted, verified, found; benchmarks)."""
        from fracdata.dataset.verify import match

        found: dict[str, Overlap] = {}
        cands = self.candidates(p or probe_set(kp), stats)
        if stats is not None:
            stats["verified"] = stats.get("verified", 0) + len({self.view(v)[0] for v in cands})
        for v in cands:
            gid, flip, view = self.view(v)
            o = match(kp, view)
            if o is not None and (gid not in found or o.inliers > found[gid].inliers):
                found[gid] = Overlap(gid, o.inliers, o.scale, flip, o.correlation)
        if stats is not None:
            stats["found"] = stats.get("found", 0) + len(found)
        return tuple(found[g] for g in sorted(found))


class GoldSet:
    """One GoldIndex per work scale (overlap.work_factor): a training image is looked up among the gold
    views made at its own scale, so a tile and its parent always meet at one scale. Picklable."""

    def __init__(self, gold: dict[str, dict[float, tuple[Keypoints, ...]]]):
        self.ids = list(gold)
        scales = sorted({f for views in gold.values() for f in views}, reverse=True)
        self.indexes = {f: GoldIndex({g: views[f] for g, views in gold.items() if f in views}) for f in scales}

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, scale: float) -> GoldIndex:
        """The index at this scale, else the nearest (gold views missing at a scale: overlap.gold_factors)."""
        return self.indexes.get(scale) or self.indexes[min(self.indexes, key=lambda f: abs(np.log(f / scale)))]

    def query(self, kp: Keypoints, p: Probe, scale: float, stats: dict | None = None) -> tuple[Overlap, ...]:
        return self.index(scale).query(kp, p, stats) if self.indexes else ()

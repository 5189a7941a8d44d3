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

N_PROBE = 300  # of the training image's, spread over it, looked up in the index (stage 1)
MAX_BITS = 48  # of 256: ORB pairs of one point under scale/JPEG differ by ~0-40 bits
MIN_VOTES = 3  # probe points agreeing on one similarity in a gold view before it is verified
REPEATS = 1  # a chunk value that occurs more often in one image is not looked up (repeated structure)
ANGLE_BIN, SCALE_BIN = 30.0, float(np.log(1.44))  # degrees; two ORB pyramid levels
TRANSLATION_BIN = 0.5  # of the gold view's longer side


@dataclass(frozen=True)
class Probe:
    """The N_PROBE keypoints of an image that are looked up in an index (stage 1): small enough to
    keep for every image of a build (~15 KB) for the split's own region check (regions.py)."""
    points: np.ndarray
    descriptors: np.ndarray
    angles: np.ndarray
    sizes: np.ndarray
    ok: np.ndarray  # (n, 16) bool: the chunk value occurs once in the whole image (unique_chunks)


def unique_chunks(des: np.ndarray) -> np.ndarray:
    """(n, 16) bool: the 16-bit chunk value occurs once in this image's descriptors. Repeated
    values come from repeated structure (striations, rows of dimples) and match everywhere; leaving
    them out halves the lookups and keeps distinct images' votes low (measured: docs/build.md). A
    property of the one image, so what matches never depends on the other images indexed."""
    c = np.ascontiguousarray(des).view(np.uint16).reshape(-1, 16)
    keep = np.zeros(c.shape, bool)
    for j in range(16):
        _, inv, cnt = np.unique(c[:, j], return_inverse=True, return_counts=True)
        keep[:, j] = cnt[inv] <= REPEATS
    return keep


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
    return Probe(kp.points[sel], kp.descriptors[sel], kp.angles[sel], kp.sizes[sel], unique_chunks(kp.descriptors)[sel])


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
        keep = np.concatenate([unique_chunks(x) for x in des]) if des else np.zeros((0, 16), bool)
        chunks = np.ascontiguousarray(d).view(np.uint16).reshape(-1, 16)
        self.order, self.sorted = [], []  # per chunk: descriptor indices sorted by their chunk value
        for c in range(16):
            idx = np.flatnonzero(keep[:, c]).astype(np.int32)
            idx = idx[np.argsort(chunks[idx, c], kind="stable")]
            self.order.append(idx)
            self.sorted.append(chunks[idx, c].copy())

    def __len__(self) -> int:
        return len(self.ids)

    def view(self, v: int) -> tuple[str, bool, Keypoints]:
        return self.ids[v // self.flips], bool(v % self.flips), self.views[v]

    def votes(self, p: Probe) -> np.ndarray:
        """Per gold view: the most probe points that agree on one similarity (Hough bins of
        ANGLE_BIN x SCALE_BIN x TRANSLATION_BIN, on 8 half-shifted grids) with a descriptor <= MAX_BITS
        away that equals them on a chunk. Every such pair counts, however many gold descriptors share
        the chunk, so a view's votes depend on the training image and that view only (module doc)."""
        out = np.zeros(len(self.views), np.int64)
        if not len(p.points) or not len(self.owner):
            return out
        n_probe = len(p.points)
        q = np.ascontiguousarray(p.descriptors).view(np.uint16).reshape(-1, 16)
        qw = np.ascontiguousarray(p.descriptors).view(np.uint64).reshape(-1, 4)
        ok = p.ok
        found = []
        for c in range(16):
            rows = np.flatnonzero(ok[:, c])
            lo = np.searchsorted(self.sorted[c], q[rows, c], "left")
            n = np.searchsorted(self.sorted[c], q[rows, c], "right") - lo
            total = int(n.sum())
            if total:
                r = np.repeat(rows, n)
                gi = self.order[c][np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)]
                found.append(gi.astype(np.int64) * n_probe + r)
        if not found:
            return out
        key = np.concatenate(found)  # (gold descriptor, probe); a pair equal on 2 chunks comes twice: harmless,
        gi, qi = key // n_probe, key % n_probe  # votes count distinct probes (sorting 40k keys costs more)
        close = np.bitwise_count(qw[qi] ^ self.words[gi]).sum(1) <= MAX_BITS
        gi, qi = gi[close], qi[close]
        # each pair proposes a similarity: rotation, scale, and the translation that maps its points
        theta = np.radians(self.angles[gi] - p.angles[qi])
        scale = self.sizes[gi] / p.sizes[qi]
        x, g = p.points[qi].astype(np.float64), self.points[gi].astype(np.float64)
        tx = g[:, 0] - scale * (np.cos(theta) * x[:, 0] - np.sin(theta) * x[:, 1])
        ty = g[:, 1] - scale * (np.sin(theta) * x[:, 0] + np.cos(theta) * x[:, 1])
        owner = self.owner[gi].astype(np.int64)
        da = np.degrees(theta) % 360 / ANGLE_BIN
        ls = np.log(scale) / SCALE_BIN
        tb = self.tbin[owner]
        na = int(round(360 / ANGLE_BIN))
        for off in ((0, 0, 0), (0.5, 0, 0), (0, 0.5, 0), (0.5, 0.5, 0), (0, 0, 0.5), (0.5, 0, 0.5), (0, 0.5, 0.5), (0.5, 0.5, 0.5)):
            b = np.floor(da + off[0]).astype(np.int64) % na
            b = b * 64 + np.clip(np.floor(ls + off[1]).astype(np.int64) + 32, 0, 63)
            b = b * 64 + np.clip(np.floor(tx / tb + off[2]).astype(np.int64) + 32, 0, 63)
            b = b * 64 + np.clip(np.floor(ty / tb + off[2]).astype(np.int64) + 32, 0, 63)
            nb = na * 64 ** 3
            cell = np.unique((owner * nb + b) * n_probe + qi) // n_probe  # distinct probes per bin
            u, cnt = np.unique(cell, return_counts=True)
            np.maximum.at(out, u // nb, cnt)
        return out

    def candidates(self, p: Probe) -> list[int]:
        return np.flatnonzero(self.votes(p) >= MIN_VOTES).tolist()

    def query(self, kp: Keypoints, p: Probe | None = None) -> tuple[Overlap, ...]:
        """The gold images this training image shares a region of specimen with (sorted by gold id)."""
        from fracdata.dataset.verify import match

        found: dict[str, Overlap] = {}
        for v in self.candidates(p or probe_set(kp)):
            gid, flip, view = self.view(v)
            o = match(kp, view)
            if o is not None and (gid not in found or o.inliers > found[gid].inliers):
                found[gid] = Overlap(gid, o.inliers, o.scale, flip, o.correlation)
        return tuple(found[g] for g in sorted(found))

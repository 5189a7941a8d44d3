"""Near-duplicate search over perceptual hashes, across the 8 rotations/flips of the square.

Each image carries 8 64-bit phashes (`decode.dihedral_hashes`: itself, rot90/180/270 and the
4 flips). Image a is a near copy of image b when min over transforms t of
popcount(hash_t(a) XOR hash_id(b)) <= max_distance. Two unrelated images differ in ~32 of
64 bits (sd ~4), so the default max distance 6 sits ~6 sd away, while a JPEG re-encode or a
rescale moves a hash by 0-4 bits.

Cost: n x m x 8 XOR+popcounts in numpy blocks; 13,000 x 13,000 images take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fracdata.dataset.decode import DIHEDRAL

TRANSFORM_NAMES = list(DIHEDRAL)
DEFAULT_MAX_DISTANCE = 6


def said(transform: str) -> str:
    """A transform as messages name it: "id" would read like a record id."""
    return "identity transform" if transform == "id" else transform


@dataclass(frozen=True)
class Match:  # positions in close_pairs' arrays; the functions below turn them back into ids
    a: int  # index into the first array
    b: int  # index into the second array
    distance: int  # Hamming distance in bits (0..64)
    transform: str  # which transform of a matched b


def close_pairs(a8, b, max_distance: int, *, only_upper: bool = False, block: int = 256) -> list[Match]:
    """All (i, j) with min_t popcount(a8[i, t] ^ b[j]) <= max_distance.

    a8: (n, 8) hashes; b: (m,) identity hashes. only_upper keeps j > i (a8 and b are the same
    items, compared once per pair).
    """
    a8 = np.asarray(a8, dtype=np.uint64).reshape(-1, 8)
    b = np.asarray(b, dtype=np.uint64).reshape(-1)
    out: list[Match] = []
    for start in range(0, len(a8), block):
        rows = a8[start:start + block]
        # (block rows x m) uint8 per transform: 256 x 13,000 = 3.3 M bytes per step
        best = np.full((len(rows), len(b)), 255, dtype=np.uint8)
        arg = np.zeros((len(rows), len(b)), dtype=np.uint8)
        for t in range(8):
            d = np.bitwise_count(rows[:, t, None] ^ b[None, :])
            better = d < best
            best[better] = d[better]
            arg[better] = t
        hit = best <= max_distance
        if only_upper:
            hit &= np.arange(len(b))[None, :] > (start + np.arange(len(rows)))[:, None]
        for i, j in zip(*np.nonzero(hit), strict=True):
            out.append(Match(start + int(i), int(j), int(best[i, j]), TRANSFORM_NAMES[arg[i, j]]))
    return out


@dataclass(frozen=True)
class Near:
    kept: str  # id of the image kept (or the gold image matched)
    other: str  # id of the image dropped (or the training image that matches gold)
    distance: int
    transform: str  # which transform of `kept` matched `other`


def near_duplicates(hashes8: dict[str, list[int]], max_distance: int) -> dict[str, Near]:
    """Greedy near-dedup over {id: 8 hashes} in the dict's (priority) order.

    Returns {dropped id: Near(kept=..., other=dropped id, ...)}. An image is dropped when it is
    close to an image earlier in the order that was itself kept, so a chain a~b~c with a and c
    far apart keeps a and c.
    """
    if not hashes8:
        return {}
    ids = list(hashes8)
    h = np.asarray([hashes8[i] for i in ids], dtype=np.uint64)
    by_later: dict[int, list[Match]] = {}
    for m in close_pairs(h, h[:, 0], max_distance, only_upper=True):
        by_later.setdefault(m.b, []).append(m)
    dropped: dict[int, Match] = {}
    for j in sorted(by_later):
        kept = [m for m in by_later[j] if m.a not in dropped]
        if kept:
            dropped[j] = min(kept, key=lambda m: (m.distance, m.a))
    return {ids[j]: Near(ids[m.a], ids[j], m.distance, m.transform) for j, m in sorted(dropped.items())}


def gold_matches(gold8: dict[str, list[int]], train: dict[str, list[int]], max_distance: int) -> list[Near]:
    """Gold images (any of 8 transforms) close to a training image: Near(kept=gold id, other=training id)."""
    if not gold8 or not train:
        return []
    gids, tids = list(gold8), list(train)
    t = np.asarray([train[i] for i in tids], dtype=np.uint64)[:, 0]
    g = np.asarray([gold8[i] for i in gids], dtype=np.uint64)
    return [Near(gids[m.a], tids[m.b], m.distance, m.transform) for m in close_pairs(g, t, max_distance)]

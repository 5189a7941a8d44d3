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

from fracdata.build.decode import DIHEDRAL

TRANSFORM_NAMES = list(DIHEDRAL)
DEFAULT_MAX_DISTANCE = 6


@dataclass(frozen=True)
class Match:
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


def near_duplicates(hashes8: list[list[int]], max_distance: int) -> dict[int, Match]:
    """Greedy near-dedup in the given (priority) order.

    Returns {index of a dropped item: Match(a=kept item, b=dropped item, ...)}. An item is
    dropped when it is close to an item earlier in the order that was itself kept, so a chain
    a~b~c with a and c far apart keeps a and c.
    """
    if not hashes8:
        return {}
    h = np.asarray(hashes8, dtype=np.uint64)
    by_later: dict[int, list[Match]] = {}
    for m in close_pairs(h, h[:, 0], max_distance, only_upper=True):
        by_later.setdefault(m.b, []).append(m)
    dropped: dict[int, Match] = {}
    for j in sorted(by_later):
        kept = [m for m in by_later[j] if m.a not in dropped]
        if kept:
            dropped[j] = min(kept, key=lambda m: (m.distance, m.a))
    return dropped


def gold_matches(gold8: list[list[int]], train: list[list[int]], max_distance: int) -> list[Match]:
    """Gold images (any of 8 transforms) close to a training image: Match(a=gold, b=train)."""
    if not gold8 or not train:
        return []
    t = np.asarray(train, dtype=np.uint64)[:, 0]
    return close_pairs(np.asarray(gold8, dtype=np.uint64), t, max_distance)

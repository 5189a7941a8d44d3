"""Split after grouping: two images that show one region of specimen never straddle train and val.

The split (split.py) keeps papers and parents together. A zoom series, a tile or a crop of one
field can still sit in two papers (or in records without a source) and land on both sides, so
validation would score memory of the field (issue 22: two zooms of one field in train and val).
After the split, the guard's own matcher (lookup.py + verify.py, the same thresholds) looks
every kept image up among the validation images:

  1. keypoints of every validation image (from its written PNG, in the worker pool): an index;
  2. every kept image's probes (kept from the decode, `Decoded.probe`) vote in it; a candidate
     is verified with the image's full keypoints (decoded again, for candidates only);
  3. union-find over the split's groups joined by these pairs: a component that holds a training
     image takes its validation images into training (validation only shrinks; no unchecked
     image enters it), and the card lists every image moved and why.
Mirror images are not indexed here (a mirrored copy is a near duplicate: dedup.py).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_INDEX = None  # this worker's lookup.GoldSet over the validation images


@dataclass(frozen=True)
class Shared:
    image: str  # the image that moved (or was queried)
    other: str  # the validation image it shares a region with
    inliers: int
    scale: float
    correlation: float


def _init(index, parent: int) -> None:
    from fracdata.dataset.decode import die_with

    global _INDEX
    die_with(parent)
    _INDEX = index


def _keypoints(path: str, scale: float | None = None):
    from fracdata.dataset import overlap
    from fracdata.images import open_normalised

    return overlap.keypoints(open_normalised(Path(path)), overlap.N_TRAIN, scale=scale)


def _views(job: tuple[str, tuple[float, ...]]) -> dict:
    """(PNG path, scales the kept images use) -> {scale: (Keypoints,)} of a validation image."""
    from fracdata.dataset import masks, overlap
    from fracdata.images import open_normalised

    im = open_normalised(Path(job[0]))
    overlay = masks.overlay_mask(np.asarray(im.convert("L")))
    return {f: (overlap.keypoints(im, overlap.N_TRAIN, overlay, f),) for f in overlap.gold_factors(im.size, job[1])}


def _query(job: tuple[str, str, object, float]) -> list[Shared]:
    """(id, PNG path, probe, scale) -> the validation images (other than itself) it shares a region with."""
    from fracdata.dataset.verify import match

    image, path, probe, scale = job
    index = _INDEX.index(scale)
    out, kp = [], None
    for v in index.candidates(probe):
        other, _, view = index.view(v)
        if other == image:
            continue
        kp = kp or _keypoints(path, scale)
        found = match(kp, view)
        if found is not None:
            out.append(Shared(image, other, found.inliers, found.scale, found.correlation))
    return out


def _pool(fn, items, workers: int, initargs, desc: str) -> list:
    from tqdm import tqdm

    chunksize = max(1, min(32, len(items) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(*initargs, os.getpid())) as ex:
        return list(tqdm(ex.map(fn, items, chunksize=chunksize), total=len(items), desc=desc, unit="img",
                         disable=None, file=sys.stderr, leave=False))


def separate(side: dict[str, str], groups: dict[str, str], probes: dict, sizes: dict, images_dir: Path,
             workers: int) -> tuple[dict[str, str], list[Shared]]:
    """(side with shared-region components moved into training, the pairs that moved an image);
    probes / sizes: {id: lookup.Probe / (w, h)} of the kept images."""
    from fracdata.dataset.lookup import GoldSet
    from fracdata.dataset.overlap import work_factor

    val = sorted(i for i, s in side.items() if s == "val")
    if not val:
        return side, []
    png = {i: str(images_dir / f"{i}.png") for i in side}
    scale = {i: work_factor(sizes[i]) for i in side}
    used = tuple(sorted(set(scale.values()), reverse=True))
    views = _pool(_views, [(png[i], used) for i in val], workers, (None,), "split: validation keypoints")
    index = GoldSet(dict(zip(val, views, strict=True)))
    jobs = [(i, png[i], probes[i], scale[i]) for i in sorted(side) if probes.get(i) is not None]
    pairs = [p for found in _pool(_query, jobs, workers, (index,), "split: shared regions") for p in found]

    up: dict[str, str] = {}

    def root(k: str) -> str:
        while up.get(k, k) != k:
            k = up[k]
        return k

    for p in pairs:
        a, b = root(groups[p.image]), root(groups[p.other])
        if a != b:
            up[max(a, b)] = min(a, b)
    with_train = {root(groups[i]) for i, s in side.items() if s == "train"}
    moved = {i for i, s in side.items() if s == "val" and root(groups[i]) in with_train}
    new = {i: "train" if i in moved else s for i, s in side.items()}
    why = {}
    for p in sorted(pairs, key=lambda p: (p.image, p.other)):  # one reason per moved image, deterministic
        for a, b in ((p.image, p.other), (p.other, p.image)):
            if a in moved and a not in why:
                why[a] = Shared(a, b, p.inliers, p.scale, p.correlation)
    for i in sorted(moved - set(why)):  # moved with its group (a paper or parent), not by a pair of its own
        why[i] = Shared(i, "", 0, 0.0, 0.0)
    return new, [why[i] for i in sorted(why)]

"""The gold guard's self-check: would it catch a quarter crop of this gold image used as a training
image? The card lists those it would not as weakly guarded. Its own module, as it runs the whole
matcher (overlap.py's keypoints, lookup.py's index, verify.py's verdict): inside overlap.py it made
an import cycle with lookup.py, which reads overlap.py's Keypoints."""

from __future__ import annotations

import numpy as np

from fracdata.dataset import masks
from fracdata.dataset.lookup import GoldIndex, probe_set
from fracdata.dataset.overlap import N_TRAIN, Keypoints, keypoints, work_factor
from fracdata.dataset.verify import match


def self_check(im, views: dict[float, tuple[Keypoints, Keypoints]]) -> bool:
    """Would the guard catch the central quarter of this image's specimen (half its width and height,
    at least 64 px) used as a training image? An image it would not is only weakly guarded (the card lists
    it): a smooth, featureless or strictly periodic specimen gives no distinct points to match."""
    from PIL import Image

    a = np.asarray(im.convert("L"))
    _, (x0, y0, x1, y1) = masks.overlay_mask(a)
    w, h = x1 - x0, y1 - y0
    if min(w, h) < 32:
        return False
    # half the width and height, but never below the builder's default --min-side (64 px): a smaller
    # training image would be rejected before the guard sees it
    cw, ch = min(w, max(w // 2, 64)), min(h, max(h // 2, 64))
    cx, cy = x0 + (w - cw) // 2, y0 + (h - ch) // 2
    crop = Image.fromarray(a[cy:cy + ch, cx:cx + cw])
    f = work_factor(crop.size)
    kp = (views.get(f) or views[work_factor(im.size)])[0]
    q = keypoints(crop, N_TRAIN, scale=f)
    return bool(GoldIndex({"self": (kp,)}).candidates(probe_set(q))) and match(q, kp) is not None

"""The crop-proof half of the gold guard: does a training image share a region of specimen with a gold image?

A perceptual hash of the whole image (dedup.py) finds copies, rotations, flips and re-encodes,
but not a crop: an 80% crop already moves a phash ~20 of 64 bits. Here each image gets ORB
keypoints (OpenCV: corners with a rotation-invariant binary descriptor, at 10 scales 1.2x
apart) on its specimen only: data bars are cut off and lettering, arrows and scale bars are
filled in first (masks.py), so two fields from one microscope and one figure editor share no
keypoints. Small images are enlarged 2x first (work_factor): ORB's 31 px patch leaves a 128 px
image little room (issue 22: 60% crops of 96-128 px images were all missed). Scales come in a few
fixed steps, and gold images are worked at every step the training images use, so a tile and its
parent are always compared at one scale (a scale that followed the size put them 2-3 pyramid
steps apart and halved what was found; measured: docs/build.md).

Which gold images a training image is compared with: lookup.py (an index of every gold
descriptor, and votes). The verdict: verify.py (all descriptors of the pair matched, RANSAC,
the pixels compared block by block).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fracdata.dataset import masks

FACTORS = (2.0, 1.0, 0.5, 0.25)  # work scales: small images are enlarged 2x, large ones shrunk in halvings
SMALL_SIDE = 512  # px: images up to this long side are worked at 2x
WORK_MAX_SIDE = 1024  # px: beyond this a scale halves (ORB on 1,024 x 768: ~75 ms; on 2,048 x 1,536: ~230)
GOLD_MAX_SIDE = 2048  # px: gold images (few) may be worked up to this, to meet small training images at 2x
N_TRAIN = 1000  # keypoints per training image
N_GOLD = 1000  # per gold image (and as many for its mirror image)
EDGE = 15  # px: ORB's border (its patch is 31 px; the pyramid is padded by reflection)
FAST_THRESHOLD = 5  # FAST corner contrast (of 255), after histogram equalisation
THUMB_SIDE = 256  # px: the pixel check compares textures at this size


@dataclass(frozen=True)
class Keypoints:
    points: np.ndarray  # (n, 2) float32, in the image's own pixels
    descriptors: np.ndarray  # (n, 32) uint8 ORB descriptors
    angles: np.ndarray  # (n,) float32 degrees (ORB's orientation)
    sizes: np.ndarray  # (n,) float32 patch diameter in image px (ORB's scale)
    thumb: np.ndarray  # (h, w) uint8 grayscale, longest side <= THUMB_SIDE px, overlays filled in
    valid: np.ndarray  # (h, w) bool: specimen, not overlay, in the thumb
    factor: float  # thumb px per image px


@dataclass(frozen=True)
class Overlap:
    gold: str  # gold id
    inliers: int  # distinct points that agree on one transform
    scale: float  # gold pixels per training pixel
    mirrored: bool  # matched the gold image's mirror image
    correlation: float  # median over blocks of the band-passed pixels where the two overlap


def _detector(n: int):
    import cv2

    cv2.setNumThreads(1)  # the builder's workers are the parallelism
    return cv2.ORB_create(nfeatures=n, scaleFactor=1.2, nlevels=10, edgeThreshold=EDGE, patchSize=31,
                          fastThreshold=FAST_THRESHOLD)


def filled(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`a` with masked pixels replaced by the blurred specimen around them (normalised convolution,
    sigma 3 px): FAST finds no corner on a letter's edge, and nearby descriptors do not see it."""
    import cv2

    if not mask.any():
        return a
    keep = (~mask).astype(np.float32)
    num = cv2.GaussianBlur(a.astype(np.float32) * keep, (0, 0), 3.0)
    den = cv2.GaussianBlur(keep, (0, 0), 3.0)
    fill = np.where(den > 1e-3, num / np.maximum(den, 1e-3), float(a[~mask].mean()) if (~mask).any() else 128.0)
    return np.where(mask, np.clip(fill, 0, 255), a).astype(np.uint8)


def work_factor(size: tuple[int, int]) -> float:
    """The scale an image of this size is worked at: 2x up to SMALL_SIDE px, 1x up to WORK_MAX_SIDE,
    then halvings (a 2,048 px image at 0.5x). A few fixed scales, so a tile and its parent share one whenever both are small or
    both large; gold images are worked at every scale the training images use (gold_keypoints)."""
    side = max(size)
    if side <= SMALL_SIDE:
        return 2.0
    f = 1.0
    while side * f > WORK_MAX_SIDE and f > FACTORS[-1]:
        f /= 2
    return f


def keypoints(im, n: int, overlay=None, scale: float | None = None) -> Keypoints:
    """ORB keypoints of a normalised PIL image's specimen, in the image's own pixel coordinates, worked
    at `scale` (default: work_factor of its size; overlay: masks.overlay_mask, when the caller has it)."""
    import cv2

    a = np.asarray(im.convert("L"))
    mask, (x0, y0, x1, y1) = overlay if overlay is not None else masks.overlay_mask(a)
    clean = filled(a, mask)
    thumb, valid, factor = _thumb(clean, mask)
    spec, smask = clean[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    none = Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), np.zeros(0, np.float32),
                     np.zeros(0, np.float32), thumb, valid, factor)
    if min(spec.shape) < 16 or smask.all():
        return none
    eq = cv2.equalizeHist(spec)  # full contrast: FAST's threshold means the same on a dim image
    h, w = eq.shape
    s = scale or work_factor(im.size)
    if s != 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        eq = cv2.resize(eq, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        smask = cv2.resize(smask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    kp, des = _detector(n).detectAndCompute(eq, (~smask).astype(np.uint8) * 255)
    if des is None or not kp:
        return none
    pts = np.float32([k.pt for k in kp])
    pts = (pts + 0.5) / s - 0.5 + np.float32([x0, y0])  # pixel centres: work px -> image px
    return Keypoints(pts.astype(np.float32), des, np.float32([k.angle for k in kp]),
                     np.float32([k.size for k in kp]) / s, thumb, valid, factor)


def _thumb(a: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(thumb, specimen mask in it, thumb px per image px): longest side <= THUMB_SIDE."""
    import cv2

    h, w = a.shape
    f = min(1.0, THUMB_SIDE / max(h, w))
    if f == 1.0:
        return a, ~mask, f
    size = (max(1, round(w * f)), max(1, round(h * f)))
    t = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) < 64  # >= 3/4 specimen
    return t, m, f


def gold_factors(size: tuple[int, int], used) -> list[float]:
    """The scales a gold image is worked at: its own, and each one training images use (`used`), or the
    nearest below it that keeps its work image between 64 and GOLD_MAX_SIDE px."""
    own, out = work_factor(size), set()
    for u in used:  # the scale itself, or the largest below it that fits (a 2,048 px gold image meets 2x at 1x)
        fits = [f for f in FACTORS if f <= u and 64 <= max(size) * f <= GOLD_MAX_SIDE]
        out.update(fits[:1])
    return sorted(out | {own}, reverse=True)


def gold_keypoints(im, factors=None) -> dict[float, tuple[Keypoints, Keypoints]]:
    """{scale: (keypoints, mirror image's keypoints)} of a gold image (ORB is rotation- but not
    mirror-invariant), at each of `factors` (default: its own scale)."""
    from PIL import Image

    a = np.asarray(im.convert("L"))
    flipped = np.ascontiguousarray(a[:, ::-1])
    overlay, overlay_f = masks.overlay_mask(a), masks.overlay_mask(flipped)
    out = {}
    for f in factors or [work_factor(im.size)]:
        out[f] = (keypoints(im, N_GOLD, overlay, f), keypoints(Image.fromarray(flipped), N_GOLD, overlay_f, f))
    return out


"""Image pairs for the gold guard's tests and benchmark (benchmarks/perf/leak_guard.py).

`distinct`: fields that share nothing but what the microscope and the figure editor put on top
of them: one data bar (same microscope, magnification and width: pixel-identical), the same
scale bar and the same panel letter in the same place. The guard must call them distinct.

`related`: pairs of images that show one physical region, both carrying overlays, as a crop,
a 1/4 or 1/9 tile, a zoom step, a rotation or a JPEG copy; `source.parent` is not involved.
Each is (bigger or parent image, smaller or derived image); the guard must find them both ways.
"""

from __future__ import annotations

import io

import numpy as np

from fracdata.synth import fields, overlays
from fracdata.synth.figures import Look
from fracdata.synth.textures import render

KINDS = ("dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "secondary_crack", "fish_eye", "gas_pore")
STYLE = {"contrast": 1.0, "brightness": 0.0, "blur": 0.4, "noise": 0.02}
HARD = overlays.Lettering("(a)", "tl", True, False, 0.17)
TRANSFORMS = ("crop 60% enlarged", "tile 1/4", "tile 1/9", "zoom x2", "crop rotated 90", "crop + JPEG q75")


def look(dark: bool = True) -> Look:
    """One microscope's data bar, '(a)' top left: the overlays every `distinct` image shares."""
    scope = overlays.microscopes(0)[0 if dark else 3]
    return Look(scope, True, HARD, False)


def specimen(seed: int, h: int, w: int, kind: str | None = None) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    kind = kind or KINDS[seed % len(KINDS)]
    feats = (kind,) if kind != "secondary_crack" else ("dimple_equiaxed", "secondary_crack")
    return render(feats, rng, h, w, rng.uniform(0, 2 * np.pi), STYLE)


def dress(img: np.ndarray, lk: Look, mag: int, letter: str = "a", seed: int | None = None) -> np.ndarray:
    """Panel letter (+ an arrow when seeded) and the data bar below: what a figure panel carries."""
    rng = np.random.default_rng(seed if seed is not None else 0)
    img, _ = overlays.decorate(img, rng, letter=letter, lettering=lk.lettering, arrows=int(seed is not None))
    return overlays.with_bar(img, lk.scope, mag)[0] if lk.bar else img


def distinct(n: int, size: tuple[int, int], seed: int = 0, lk: Look | None = None, mag: int = 1000) -> list[np.ndarray]:
    """n different fields (of all kinds), each with the same bar, scale bar and '(a)' (size = (h, w) in all)."""
    lk = lk or look()
    h, w = size
    hs = h - overlays.data_bar(lk.scope, mag, w).shape[0]
    return [dress(specimen(seed * 1_000_003 + i, hs, w), lk, mag) for i in range(n)]


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("L"))


def related(how: str, seed: int, size: tuple[int, int], lk: Look | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(parent, derived) for one transform; `size` = (h, w) of the derived image (the tile, the crop)."""
    lk = lk or look()
    h, w = size
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(8,)))
    bar = overlays.data_bar(lk.scope, 1000, w).shape[0]
    if how.startswith("tile"):
        k = 2 if how == "tile 1/4" else 3
        raw = specimen(seed, k * h, k * w)
        r, c = int(rng.integers(k)), int(rng.integers(k))
        tile = raw[r * h:(r + 1) * h, c * w:(c + 1) * w]
        return dress(raw, lk, 500, "a", seed), dress(tile[: h - bar], lk, 500 * k, "b", seed + 1)
    if how == "zoom x2":
        hs = h - bar
        field = specimen(seed, 2 * hs, 2 * w)
        (low, _), (high, _) = fields.zoom_views(field, (1.0, 2.0), rng, hs, w)
        return dress(low, lk, 1000, "a", seed), dress(high, lk, 2000, "b", seed + 1)
    hs = h - bar
    base = specimen(seed, hs, w)
    parent = dress(base, lk, 1000, "a", seed)
    if how == "crop 60% enlarged":
        y, x = int(rng.integers(0, hs - 0.6 * hs + 1)), int(rng.integers(0, w - 0.6 * w + 1))
        crop = fields.resize(base[y:y + round(0.6 * hs), x:x + round(0.6 * w)], hs, w)
        return parent, dress(crop, lk, 1667, "b", seed + 1)
    if how == "crop rotated 90":
        crop = base[: round(0.8 * hs), : round(0.8 * w)]
        return parent, np.ascontiguousarray(np.rot90(dress(crop, lk, 1000, "b", seed + 1)))
    if how == "crop + JPEG q75":
        y, x = int(rng.integers(0, hs // 4 + 1)), int(rng.integers(0, w // 4 + 1))
        return parent, _jpeg(dress(base[y:y + round(0.75 * hs), x:x + round(0.75 * w)], lk, 1000, "b", seed + 1), 75)
    raise ValueError(how)

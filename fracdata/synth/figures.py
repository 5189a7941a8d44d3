"""A fake paper's figures as real ones look: data bars, letters, arrows, zoom series, tiles, ROI, copies.

`units` regroups a split's planned feature list (exact counts per feature, __init__.plan) into
units: single panels, or several images of one physical field (fields.py) that share a feature
set. `papers` packs units into papers, `figures` into figures, and `draw` renders a figure's
images with the paper's look (`Look`: its microscope, whether it shows the data bar, its panel
letter style). Only single-texture features that fill the frame make series (a crop of a
pore or crack image may miss the pore or the crack; a low-magnification view of 3 px striations
would lose them): dimples, cleavage facets, intergranular facets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fracdata.synth import fields, overlays
from fracdata.synth.textures import render

SERIES_OK = ("dimple_equiaxed", "cleavage_facet", "ig_facet")
# kind: (images in the unit, chance that a unit starting at an eligible feature is of this kind)
KINDS = {"zoom2": (2, 0.07), "zoom3": (3, 0.05), "roi": (2, 0.06), "tiles4": (4, 0.05), "tiles9": (9, 0.025),
         "copy": (2, 0.03)}
ZOOMS = {"zoom2": (1.0, 2.0), "zoom3": (1.0, 1.5, 2.0)}
BASE_MAGS = (250, 500, 1000, 1000, 2000, 2000, 5000)  # x1,000 and x2,000 most often, as in papers
# papers with a data bar / panel letters; an inset scale bar without a bar. Fewer than in the literature,
# and letters smaller: at 96-128 px every overlay pixel is a specimen pixel the tiny demo model cannot see
# (all at literature rates cost the reduced demo ~0.1 of micro-F1 over its blank-image control)
BAR_SHARE, LETTER_SHARE, INSET_SHARE = 0.6, 0.5, 0.5
ARROW, CIRCLE, LABEL, BOX = 0.1, 0.05, 0.05, 0.6  # per image; BOX: a low-zoom view marks the next one
NOTE = {"zoom2": "({b}) is a higher magnification of the region marked in ({a}).",
        "zoom3": "({b}) and ({c}) are successively higher magnifications of the marked regions.",
        "roi": "({b}) is an enlarged view of the region boxed in ({a}).",
        "tiles4": "Panels ({a})-({d}) are the four quarters of one micrograph.",
        "tiles9": "Panels ({a})-({i}) are tiles of one micrograph.", "copy": "", "single": ""}


@dataclass(frozen=True)
class Look:
    scope: overlays.Microscope
    bar: bool  # the microscope's data bar is printed below each image
    lettering: overlays.Lettering | None  # panel letters, or none
    inset: bool  # no data bar: an inset scale bar instead


def look(rng, scopes) -> Look:
    scope = scopes[int(rng.integers(len(scopes)))]
    bar = bool(rng.random() < BAR_SHARE)
    lettering = overlays.Lettering.draw_from(rng) if rng.random() < LETTER_SHARE else None
    return Look(scope, bar, lettering, (not bar) and bool(rng.random() < INSET_SHARE))


def units(feats: list[tuple[str, ...]], rng) -> list[tuple[str, list[tuple[str, ...]]]]:
    """[(kind, [features per image])]: the same multiset of features, some regrouped into series."""
    rest = list(feats)
    out = []
    names, probs = list(KINDS), np.array([p for _, p in KINDS.values()])
    while rest:
        f = rest.pop(0)
        kind = "single"
        r = rng.random()
        if len(f) == 1 and f[0] in SERIES_OK and r < probs.sum():
            kind = names[int(np.searchsorted(np.cumsum(probs), r, side="right"))]
        elif f != ("fish_eye",) and r < KINDS["copy"][1]:
            kind = "copy"
        k = KINDS[kind][0] if kind != "single" else 1
        same = []
        for j, g in enumerate(rest):  # the next k-1 items with the same features join the unit
            if len(same) == k - 1:
                break
            if g == f:
                same.append(j)
        if len(same) < k - 1:
            kind, same = "single", []
        for j in reversed(same):
            rest.pop(j)
        out.append((kind, [f] * (len(same) + 1)))
    return out


def papers(us: list, size: tuple[int, int], rng) -> list[list]:
    """Units packed into papers of about `size` images (a unit never splits; a last paper smaller
    than the minimum joins the one before)."""
    out, cur, target = [], [], int(rng.integers(size[0], size[1] + 1))
    for u in us:
        cur.append(u)
        if sum(len(x[1]) for x in cur) >= target:
            out.append(cur)
            cur, target = [], int(rng.integers(size[0], size[1] + 1))
    if cur:
        if out and sum(len(x[1]) for x in cur) < size[0]:
            out[-1].extend(cur)
        else:
            out.append(cur)
    return out


def figures(paper: list, rng) -> list[tuple[str, list]]:
    """[(kind, [features per panel])]: a series is one figure; singles and copies fill figures of 1-4 panels."""
    out, pending = [], []
    for kind, feats in paper:
        if kind in ("single", "copy"):
            pending.append((kind, feats))
            continue
        out.append((kind, feats))
    while pending:
        k = min(len(pending), int(rng.integers(1, 5)))
        out.append(("panels", pending[:k]))
        pending = pending[k:]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _decorate(img, rng, lk: Look, letter: str | None, mag: int, *, box=None, letters=True):
    """Specimen -> figure panel: letter, arrows, labels, inset scale bar or data bar."""
    h, w = img.shape
    img, mask = overlays.decorate(
        img, rng, letter=letter if letters else None, lettering=lk.lettering,
        inset=(mag, w) if lk.inset else None, arrows=int(rng.random() < ARROW) * int(rng.integers(1, 3)),
        circles=int(rng.random() < CIRCLE), labels=int(rng.random() < LABEL), box=box)
    if lk.bar:
        img, m2 = overlays.with_bar(img, lk.scope, mag)
        mask = np.vstack([mask, m2[h:]])
    return img, mask


def spec_height(h: int, w: int, lk: Look) -> int:
    """Rows of specimen in an h-row image (the data bar takes the rest)."""
    return h - overlays.data_bar(lk.scope, 1000, w).shape[0] if lk.bar else h


def draw(kind: str, feats: list, letters: list[str], rng, size: tuple[int, int], angle: float, style: dict,
         lk: Look, parent: str) -> list[dict]:
    """The images of one series unit: [{pixels, mask, fmt, mag, parent}] in panel order."""
    h, w = size
    mag = int(rng.choice(BASE_MAGS))
    if kind in ("zoom2", "zoom3"):
        zooms = ZOOMS[kind]
        hs = spec_height(h, w, lk)
        field = render(feats[0], rng, round(hs * zooms[-1]), round(w * zooms[-1]), angle, style)
        out = []
        for k, (view, nxt) in enumerate(fields.zoom_views(field, zooms, rng, hs, w)):
            box = nxt if nxt is not None and rng.random() < BOX else None
            img, mask = _decorate(view, rng, lk, letters[k], round(mag * zooms[k]), box=box)
            out.append({"pixels": img, "mask": mask, "fmt": "png", "mag": round(mag * zooms[k]), "parent": None})
        return out
    if kind == "roi":
        hs = spec_height(h, w, lk)
        base = render(feats[0], rng, hs, w, angle, style)
        box, enlarged = fields.roi(base, rng)
        a = _decorate(base, rng, lk, letters[0], mag, box=box)
        b = _decorate(enlarged, rng, lk, letters[1], round(mag / (box[2] - box[0])))
        return [{"pixels": a[0], "mask": a[1], "fmt": "png", "mag": mag, "parent": None},
                {"pixels": b[0], "mask": b[1], "fmt": "png", "mag": round(mag / (box[2] - box[0])), "parent": None}]
    if kind in ("tiles4", "tiles9"):
        k = 2 if kind == "tiles4" else 3
        naive = lk.bar and rng.random() < 0.5  # half the tilers cut the data bar along with the field
        H = spec_height(k * h, k * w, lk) if naive else k * h
        raw = render(feats[0], rng, H, k * w, angle, style)
        mask = np.zeros(raw.shape, bool)
        if naive:
            raw, mask = overlays.with_bar(raw, lk.scope, mag)
        return [{"pixels": t, "mask": m, "fmt": "png", "mag": mag, "parent": parent}
                for t, m in zip(fields.tiles(raw, k), fields.tiles(mask, k), strict=True)]
    raise ValueError(kind)


def draw_panel(kind: str, feats: tuple, letter: str, rng, size: tuple[int, int], angle: float, style: dict,
               lk: Look) -> list[dict]:
    """One single panel (a copy unit: the same picture twice, PNG and JPEG)."""
    h, w = size
    mag = int(rng.choice(BASE_MAGS))
    img, mask = _decorate(render(feats, rng, spec_height(h, w, lk), w, angle, style), rng, lk, letter, mag)
    out = [{"pixels": img, "mask": mask, "fmt": "png", "mag": mag, "parent": None}]
    if kind == "copy":
        out.append({**out[0], "fmt": "jpeg"})
    return out


FOLDERS = {"manifest": "images", "manual": "manual/images", "gold": "gold"}


def truth(splits: dict[str, list[dict]]) -> list[dict]:
    """figures.jsonl: what each written image carries, for tests and benchmarks (docs/synth.md)."""
    return [{"id": it["id"], "split": split, "image": f"{FOLDERS[split]}/{it['file']}", "unit": it["unit"],
             "parent": it["parent"], "microscope": it["microscope"], "mag": it["mag"], "bar_rows": it["bar_rows"],
             "overlay_px": it["overlay_px"], "turn": it["turn"]} for split, items in splits.items() for it in items]


def counts(splits: dict[str, list[dict]]) -> dict:
    """synth.json counts: images per unit kind, images with a data bar."""
    return {"units": {k: {u: sum(it["unit"] == u for it in v) for u in sorted({it["unit"] for it in v})}
                      for k, v in splits.items()},
            "data_bar": {k: sum(it["bar_rows"] > 0 for it in v) for k, v in splits.items()}}

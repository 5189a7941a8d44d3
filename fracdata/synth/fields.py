"""One physical field seen several times, as in real corpora: zoom series, tiles, ROI crops, copies.

A field is rendered once, bigger than an image (textures.py), and the images are cut from it:
  zoom    the same field at 2-3 magnifications: views of nested crops of the field, each
          shrunk to the image size, so each is a scaled crop of the next (x1,000 / x2,000);
  tiles   a raw micrograph k x k images big, cut into k^2 tiles (1/4 or 1/9 of its area each);
  roi     an overview and a region of it enlarged back to full size (a digital zoom: the
          blurry enlargement of a crop that papers print beside the overview);
  copy    the same picture saved twice, as PNG and as JPEG (figure and supplementary file).
All arrays are uint8 (h, w); sizes are (h, w).
"""

from __future__ import annotations

import io

import numpy as np


def resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-correct shrink (LANCZOS) or a smooth enlargement (BICUBIC), as a figure editor does."""
    from PIL import Image

    if a.shape == (h, w):
        return a
    how = Image.Resampling.LANCZOS if h * w < a.size else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(a).resize((w, h), how))


def nested_crops(rng, H: int, W: int, zooms: tuple[float, ...]) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) in the field for each zoom (1 = the whole field), each inside the one before."""
    sizes = [(round(W / z), round(H / z)) for z in zooms]
    boxes: list[tuple[int, int, int, int]] = [None] * len(zooms)  # type: ignore[list-item]
    cw, ch = sizes[-1]
    x, y = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
    boxes[-1] = (x, y, x + cw, y + ch)
    for k in range(len(zooms) - 2, -1, -1):  # outwards: each crop holds the next one
        cw, ch = sizes[k]
        ix0, iy0, ix1, iy1 = boxes[k + 1]
        x = int(rng.integers(max(0, ix1 - cw), min(ix0, W - cw) + 1))
        y = int(rng.integers(max(0, iy1 - ch), min(iy0, H - ch) + 1))
        boxes[k] = (x, y, x + cw, y + ch)
    return boxes


def zoom_views(field: np.ndarray, zooms: tuple[float, ...], rng, h: int, w: int):
    """[(view (h, w), box of the next view in this view's fractions or None)] from low to high zoom."""
    H, W = field.shape
    boxes = nested_crops(rng, H, W, zooms)
    out = []
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        nxt = None
        if k + 1 < len(boxes):
            a0, b0, a1, b1 = boxes[k + 1]
            nxt = ((a0 - x0) / (x1 - x0), (b0 - y0) / (y1 - y0), (a1 - x0) / (x1 - x0), (b1 - y0) / (y1 - y0))
        out.append((resize(field[y0:y1, x0:x1], h, w), nxt))
    return out


def tiles(raw: np.ndarray, k: int) -> list[np.ndarray]:
    """k x k tiles, row by row (the last row and column take the remainder pixels)."""
    H, W = raw.shape
    ys, xs = np.linspace(0, H, k + 1).round().astype(int), np.linspace(0, W, k + 1).round().astype(int)
    return [np.ascontiguousarray(raw[ys[r]:ys[r + 1], xs[c]:xs[c + 1]]) for r in range(k) for c in range(k)]


def roi(img: np.ndarray, rng) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """(box as fractions, the region enlarged back to the image size): 40-65% of each side."""
    h, w = img.shape
    s = rng.uniform(0.4, 0.65)
    ch, cw = max(8, round(h * s)), max(8, round(w * s))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return (x / w, y / h, (x + cw) / w, (y + ch) / h), resize(img[y:y + ch, x:x + cw], h, w)


def encode(img: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """PNG (lossless) or JPEG bytes of a grayscale image."""
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    else:
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

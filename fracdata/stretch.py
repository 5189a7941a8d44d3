"""16-bit, 32-bit and float gray images to 8 bits: a percentile stretch (fracdata.images.to_8bit).

SEM and optical microscopes save 12- and 16-bit TIFFs whose contrast is an operator setting, and
a single hot pixel (a cosmic ray, a dead detector element, a saturated inclusion) is common. A
min..max stretch lets that one pixel set the white point: a 16-bit frame spanning 1,000..4,000
with one pixel at 65,535 keeps 12 of 256 grey levels. So the black and white points are the
0.1st and 99.9th percentiles (LOW_PCT, HIGH_PCT, numpy's linear interpolation), values beyond
them clip to 0 and 255, and the rest maps linearly and rounds to the nearest level:
    out = rint(clip((v - p_low) * 255 / (p_high - p_low), 0, 255))
Percentiles are taken over every pixel up to SAMPLE pixels, else over every k-th pixel in row-major
order (k = ceil(n / SAMPLE)): the same pixels always give the same image, hence the same id.
NaN and infinite samples (float TIFFs) are left out of the percentiles; NaN becomes 0, +inf 255.

Degenerate dynamic range: when p_low == p_high (a flat frame, or one whose every pixel but a
few hot ones share a value) the stretch falls back to min..max; a frame of one value becomes 0.
Either way the normalised image carries `info[NOTE_KEY]` = "flat" or "degenerate", which the
stages count and print as a warning (it is kept: a flat frame is still an image; its
label is another matter). Memory: one float64 copy of the pixels (8 bytes each, in place) plus
at most SAMPLE float64 values for the percentiles.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LOW_PCT, HIGH_PCT = 0.1, 99.9
SAMPLE = 1 << 22  # ~4.2 Mpx: exact for most frames, a fixed subsample of larger ones
NOTE_KEY = "fracdata.dynamic_range"
NOTES = {"flat": "every pixel has one value (normalised to black)",
         "degenerate": f"the {LOW_PCT:g}-{HIGH_PCT:g} percentile range is a single value (a flat frame with a few "
                       "outliers): stretched min..max instead"}


def stretch_to_8bit(im: Image.Image) -> Image.Image:
    """A 1-band high-depth image (I;16*, I, F) -> 8-bit `L`, as the module doc says."""
    a = np.asarray(im, dtype=np.float64)  # a new array: the stretch below runs in place on it
    flat = a.reshape(-1)
    sample = flat[:: -(-flat.size // SAMPLE)]
    finite = sample[np.isfinite(sample)]
    note = None
    if finite.size == 0:
        lo = hi = 0.0
    else:
        lo, hi = (float(x) for x in np.percentile(finite, [LOW_PCT, HIGH_PCT]))
    if not hi > lo:
        lo, hi = float(np.nanmin(flat)), float(np.nanmax(flat))  # fmin/fmax reductions: no copy
        if not (np.isfinite(lo) and np.isfinite(hi)):  # infinities (or only NaN): their finite part
            ok = flat[np.isfinite(flat)]
            lo, hi = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 0.0)
        note = "degenerate" if hi > lo else "flat"
    if hi > lo:  # in place: the same IEEE operations as (a - lo) * (255 / (hi - lo)), one array
        a -= lo
        a *= 255.0 / (hi - lo)
        np.clip(a, 0.0, 255.0, out=a)  # also sends -inf to 0 and +inf to 255
        np.rint(a, out=a)
    else:
        a[np.isfinite(a)] = 0.0
    np.nan_to_num(a, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    out = Image.fromarray(a.astype(np.uint8))  # 2-D uint8 -> mode L
    if note is not None:
        out.info[NOTE_KEY] = note
    return out


def range_note(im: Image.Image) -> str | None:
    """"flat" / "degenerate" for an image `stretch_to_8bit` made from such pixels, else None."""
    return im.info.get(NOTE_KEY)

"""What literature fractographs carry on top of the specimen: the SEM data bar, scale bars, panel
letters, arrows, circles and text labels (docs/synth.md; the project's shared notes on real figures).

Overlays are drawn with PIL on a canvas SS times the image size and box-averaged down, so a
128 px image gets the few-pixel, anti-aliased lettering of a real figure shrunk to that size.
Every function returns the image (uint8) and a bool mask of the pixels the overlay touched
(what the gold guard must learn to ignore; tests compare its detector with these masks).

The data bar depends only on (microscope, magnification, image width): two fields imaged on
one microscope at one magnification carry the same strip pixel for pixel, as real ones do.
Microscopes come from a pool drawn from the seed alone (not from a split's stream), so training
and gold images share them: the guard's hardest false-positive case is in every corpus.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SS = 4  # supersampling of the overlay canvas (4 x 4 sub-pixels per pixel)
BAR_SHARE = 0.07  # data bar height / image width: a 1280 px frame has a ~90 px strip
HFW_AT_X1 = 127_000.0  # um: horizontal field width at x1 (the Polaroid 127 mm convention), HFW = 127 mm / mag
NICE_UM = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
MAGS = (100, 200, 250, 500, 1000, 1500, 2000, 2500, 5000, 10000)
STYLES = ("jeol", "hitachi", "fei", "zeiss")
INSTRUMENTS = {"jeol": ("JSM-6490LV", "JSM-7600F", "JSM-IT300"), "hitachi": ("SU8010", "S-3400N", "TM3030"),
               "fei": ("Quanta 250 FEG", "Nova NanoSEM 450", "Inspect F50"), "zeiss": ("EVO MA15", "Sigma 300", "SUPRA 55")}
DETECTORS = {"jeol": ("SEI", "BEC", "LEI"), "hitachi": ("SE(M)", "SE(U)", "BSE"), "fei": ("ETD", "CBS", "TLD"),
             "zeiss": ("SE2", "InLens", "BSD")}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LABELS = ("1", "2", "A", "B", "I", "II", "*", "P1", "Region 1", "Zone II")  # never a feature's name: no label leak


@dataclass(frozen=True)
class Microscope:
    style: str  # jeol | hitachi | fei | zeiss: layout and wording of the data bar
    name: str  # instrument, printed in the bar
    dark: bool  # white text on black, or black text on light grey
    kv: float
    wd: float  # mm
    detector: str
    date: str


def microscopes(seed: int, n: int = 8) -> tuple[Microscope, ...]:
    """The pool every split draws its papers' microscopes from (seeded, split-independent)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9, 0, 0)))
    out = []
    for k in range(n):
        style = STYLES[k % len(STYLES)]
        out.append(Microscope(style, str(rng.choice(INSTRUMENTS[style])), bool(rng.random() < 0.7),
                              float(rng.choice([5.0, 10.0, 15.0, 20.0, 25.0])), round(float(rng.uniform(4, 15)), 1),
                              str(rng.choice(DETECTORS[style])),
                              f"{int(rng.integers(1, 29))} {MONTHS[int(rng.integers(12))]} {int(rng.integers(2008, 2026))}"))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(4, int(size)))  # Pillow's embedded FreeType font: same glyphs everywhere


def mag_text(style: str, mag: int) -> str:
    """x1,000 (JEOL), x1.00k (Hitachi), 1 000 x (FEI), 1.00 K X (Zeiss)."""
    if style == "jeol":
        return f"x{mag:,}"
    if style == "hitachi":
        return f"x{mag / 1000:.2f}k" if mag >= 1000 else f"x{mag}"
    if style == "fei":
        return f"{mag:,} x".replace(",", " ")
    return f"{mag / 1000:.2f} K X"


def scale_bar(mag: float, width_px: int, share: float = 0.25) -> tuple[str, float]:
    """('10 um' label, length in px) of the longest nice length <= share of the field width."""
    um_per_px = HFW_AT_X1 / mag / width_px
    fits = [u for u in NICE_UM if u / um_per_px <= share * width_px] or [NICE_UM[0]]
    um = fits[-1]
    label = f"{um / 1000:g} mm" if um >= 1000 else f"{um:g} um"  # Pillow's embedded font has no micro sign
    return label, um / um_per_px


def _canvas(h: int, w: int):
    from PIL import Image

    # "L" ink values and an "L" coverage (alpha) layer, both at SS x the size
    return Image.new("L", (w * SS, h * SS), 0), Image.new("L", (w * SS, h * SS), 0)


def _down(ink, alpha, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-average the canvas to (h, w): premultiplied ink (0..255), coverage (0..1). PIL's BOX
    filter over SS x SS blocks is the exact block mean, ~10x faster than numpy's reshape-mean."""
    from PIL import Image, ImageChops

    box = Image.Resampling.BOX
    a = np.asarray(alpha.resize((w, h), box), np.float32) / 255  # 8-bit means: 1/255 steps, plenty here
    i = np.asarray(ImageChops.multiply(ink, alpha).resize((w, h), box), np.float32)
    return i, a


def composite(img: np.ndarray, ink, alpha) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape
    i, a = _down(ink, alpha, h, w)
    out = img.astype(np.float32) * (1 - a) + i
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), a > 0.02


@functools.lru_cache(maxsize=512)
def data_bar(scope: Microscope, mag: int, w: int) -> np.ndarray:
    """The microscope's strip (uint8, height BAR_SHARE x w) at this magnification: a pure function
    of its arguments, so fields imaged alike share it exactly. Read-only (cached)."""
    from PIL import ImageDraw

    bh = max(7, round(BAR_SHARE * w))
    ink, alpha = _canvas(bh, w)
    bg, fg = (8, 235) if scope.dark else (205, 10)
    d, da = ImageDraw.Draw(ink), ImageDraw.Draw(alpha)
    W, H = w * SS, bh * SS
    d.rectangle((0, 0, W, H), fill=bg)
    da.rectangle((0, 0, W, H), fill=255)
    label, bar_px = scale_bar(mag, w, 0.18)
    bar = bar_px * SS
    mag_s = mag_text(scope.style, mag)
    if scope.style == "zeiss":  # two rows of "key = value" fields, scale bar at the left
        rows = [f"EHT = {scope.kv:.2f} kV   WD = {scope.wd} mm   Mag = {mag_s}",
                f"Signal A = {scope.detector}   Date: {scope.date}   {scope.name}"]
        f = font(H * 0.3)
        x0 = 0.05 * W + bar + 0.04 * W
        for k, text in enumerate(rows):
            _fit_text(d, da, (x0, H * (0.12 + 0.45 * k)), text, f, W - x0 - 0.02 * W, fg)
        d.rectangle((0.04 * W, H * 0.62, 0.04 * W + bar, H * 0.78), fill=fg)
        da.rectangle((0.04 * W, H * 0.62, 0.04 * W + bar, H * 0.78), fill=255)
        _fit_text(d, da, (0.04 * W, H * 0.14), label, font(H * 0.34), bar * 1.6, fg)
    else:
        fields = {"jeol": [scope.detector, f"{scope.kv:g}kV", mag_s, "|BAR|", f"WD{scope.wd:g}mm", scope.name],
                  "hitachi": [scope.name, f"{scope.kv:.1f}kV", f"{scope.wd:.1f}mm", mag_s, scope.detector, "|BAR|"],
                  "fei": [f"HV {scope.kv:.2f} kV", f"mag {mag_s}", f"WD {scope.wd:.1f} mm", f"det {scope.detector}",
                          scope.date, "|BAR|"]}[scope.style]
        f = font(H * 0.42)
        widths = [bar + 0.02 * W if t == "|BAR|" else d.textlength(t, font=f) for t in fields]
        gap = (W * 0.96 - sum(widths)) / max(1, len(fields) - 1)
        if gap < 0.01 * W:  # too long for this width: shrink the text, keep the scale bar's length
            f = font(H * 0.42 * (W * 0.9 - bar) / max(1.0, sum(widths) - bar))
            widths = [bar + 0.02 * W if t == "|BAR|" else d.textlength(t, font=f) for t in fields]
            gap = (W * 0.96 - sum(widths)) / max(1, len(fields) - 1)
        x = 0.02 * W
        for t, tw in zip(fields, widths, strict=True):
            if t == "|BAR|":  # the bar with its length written above it
                d.rectangle((x, H * 0.62, x + bar, H * 0.76), fill=fg)
                da.rectangle((x, H * 0.62, x + bar, H * 0.76), fill=255)
                _fit_text(d, da, (x, H * 0.1), label, font(H * 0.36), bar * 1.5, fg)
            else:
                _fit_text(d, da, (x, H * 0.3), t, f, tw + 1, fg)
            x += tw + gap
        if scope.style == "fei":  # FEI frames the fields with thin separators
            d.line((0, 1, W, 1), fill=fg, width=max(1, SS // 2))
    out, _ = composite(np.zeros((bh, w), np.uint8), ink, alpha)
    out.flags.writeable = False
    return out


def _fit_text(d, da, xy, text, f, max_w, fill):
    """Draw text at xy, shrunk to max_w if it is wider."""
    tw = d.textlength(text, font=f)
    if tw > max_w > 0:
        f = font(f.size * max_w / tw)
    d.text(xy, text, font=f, fill=fill)
    da.text(xy, text, font=f, fill=255)


def with_bar(specimen: np.ndarray, scope: Microscope, mag: int) -> tuple[np.ndarray, np.ndarray]:
    """The specimen with the data bar appended below it: (image, overlay mask)."""
    bar = data_bar(scope, mag, specimen.shape[1])
    mask = np.zeros((specimen.shape[0] + bar.shape[0], specimen.shape[1]), bool)
    mask[specimen.shape[0]:] = True
    return np.vstack([specimen, bar]), mask


@dataclass(frozen=True)
class Lettering:
    """A paper's panel-letter style: '(a)' / 'a' / 'A', where, colours, box."""
    form: str  # "(a)" | "a" | "A"
    corner: str  # "tl" | "tr"
    white: bool
    box: bool
    size: float  # letter height / shorter image side

    @staticmethod
    def draw_from(rng) -> Lettering:
        return Lettering(str(rng.choice(["(a)", "a", "A"])), "tl" if rng.random() < 0.8 else "tr",
                         bool(rng.random() < 0.6), bool(rng.random() < 0.4), float(rng.choice([0.1, 0.12, 0.14])))


def decorate(img: np.ndarray, rng, *, letter: str | None = None, lettering: Lettering | None = None,
             inset: tuple[int, int] | None = None, arrows: int = 0, circles: int = 0, labels: int = 0,
             box: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Overlays on a specimen image (uint8 (h, w)): (image, overlay mask).

    letter + lettering: the panel letter; inset = (magnification, HFW width px): a scale bar inside
    the image (bottom right) for images without a data bar; arrows, circles, labels: how many;
    box: a region-of-interest rectangle (x0, y0, x1, y1 as fractions) marking where a later
    panel was cut from.
    """
    from PIL import ImageDraw

    h, w = img.shape
    if not ((letter and lettering) or inset or arrows or circles or labels or box):
        return img, np.zeros(img.shape, bool)
    ink, alpha = _canvas(h, w)
    d, da = ImageDraw.Draw(ink), ImageDraw.Draw(alpha)
    W, H, side = w * SS, h * SS, min(w, h) * SS

    def both(method, *a, fill, **kw):
        getattr(d, method)(*a, fill=fill, **kw)
        getattr(da, method)(*a, fill=255, **kw)

    if letter and lettering:
        text = {"(a)": f"({letter})", "a": letter, "A": letter.upper()}[lettering.form]
        f = font(side * lettering.size)
        x0, y0, x1, y1 = d.textbbox((0, 0), text, font=f)
        pad = 0.03 * side
        x = pad if lettering.corner == "tl" else W - (x1 - x0) - 2 * pad
        fg, bg = (250, 5) if lettering.white else (5, 250)
        if lettering.box:
            both("rectangle", (x - pad / 2, pad / 2, x + x1 - x0 + pad, pad + y1 + pad / 2), fill=bg)
        both("text", (x - x0 + pad / 4, pad), text, font=f, fill=fg)
    if inset:
        mag, hfw_px = inset
        label, px = scale_bar(mag, hfw_px, 0.22)
        px *= SS * w / hfw_px
        x1, y1 = W * 0.95, H * 0.93
        fg = 250 if rng.random() < 0.7 else 5
        both("rectangle", (x1 - px, y1 - 0.025 * side, x1, y1), fill=fg)
        f = font(side * 0.09)
        tw = d.textlength(label, font=f)
        both("text", (x1 - px / 2 - tw / 2, y1 - 0.14 * side), label, font=f, fill=fg)
    for _ in range(arrows):
        tip = rng.uniform(0.25, 0.75, 2) * (W, H)
        ang = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.15, 0.3) * side
        tail = tip + length * np.array([np.cos(ang), np.sin(ang)])
        fg = 250 if rng.random() < 0.6 else 5
        width = max(SS, round(rng.uniform(0.012, 0.025) * side))
        both("line", [tuple(tail), tuple(tip)], fill=fg, width=width)
        head = 0.07 * side
        left = tip + head * np.array([np.cos(ang + 0.45), np.sin(ang + 0.45)])
        right = tip + head * np.array([np.cos(ang - 0.45), np.sin(ang - 0.45)])
        both("polygon", [tuple(tip), tuple(left), tuple(right)], fill=fg)
    for _ in range(circles):
        c = rng.uniform(0.3, 0.7, 2) * (W, H)
        r = rng.uniform(0.08, 0.2) * side * np.array([1, rng.uniform(0.7, 1.0)])
        fg = 250 if rng.random() < 0.6 else 5
        d.ellipse((*(c - r), *(c + r)), outline=fg, width=max(SS, round(0.015 * side)))
        da.ellipse((*(c - r), *(c + r)), outline=255, width=max(SS, round(0.015 * side)))
    for _ in range(labels):
        text = str(rng.choice(LABELS))
        xy = rng.uniform(0.15, 0.7, 2) * (W, H)
        both("text", tuple(xy), text, font=font(side * 0.11), fill=250 if rng.random() < 0.6 else 5)
    if box:
        x0, y0, x1, y1 = box
        d.rectangle((x0 * W, y0 * H, x1 * W, y1 * H), outline=250, width=max(SS, round(0.012 * side)))
        da.rectangle((x0 * W, y0 * H, x1 * W, y1 * H), outline=255, width=max(SS, round(0.012 * side)))
    return composite(img, ink, alpha)

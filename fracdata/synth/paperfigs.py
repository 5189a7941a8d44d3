"""Figure images for the synthetic papers (papers.py): SEM panels with the microscope's data bar,
panel letters drawn on the panels, panel titles above them, and multi-panel sheets with white
or thin dark gutters, as journals print fractographs (docs: ../shared/docs/real-figures.md).

Every drawing returns the pixels and where each panel sits in them (the ground truth the
miner's panel split is scored against). Textures come from textures.py; text is drawn with
Pillow's bundled scalable font, so nothing depends on the fonts of the machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fracdata.synth.textures import render

# what a data bar says: accelerating voltage, magnification, working distance, detector, scale
# ("um": Pillow's bundled font has no micro sign, and older microscopes print it so)
VOLTAGES = ("5.0kV", "10.0kV", "15.0kV", "20.0kV")
MAGS = (("x250", "100 um"), ("x500", "50 um"), ("x1,000", "20 um"), ("x2,500", "10 um"),
        ("x5,000", "5 um"))
DETECTORS = ("SE", "BSE", "SEI", "LEI")
TITLES = ("As-built", "Machined", "HIP", "Heat treated", "Specimen A", "Specimen B", "Origin", "Overload zone",
          "R = 0.1", "R = 0.5", "As-cast", "Aged", "Core", "Edge", "20 \u00b0C", "-40 \u00b0C")


def font(size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except (TypeError, OSError):  # an older or FreeType-less Pillow: its bitmap font
        return ImageFont.load_default()


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def data_bar(img: np.ndarray, rng, light: bool = False) -> np.ndarray:
    """The microscope's strip along the bottom: kV, magnification, WD, detector and a scale bar,
    white on black (or black on light grey), over the bottom ~9% of the image."""
    h, w = img.shape
    bar = max(14, round(0.09 * h))
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    bg, fg = (225, 10) if light else (8, 245)
    d.rectangle((0, h - bar, w, h), fill=bg)
    mag, scale = _pick(rng, MAGS)
    f = font(max(8, bar - 6))
    text = f"{_pick(rng, VOLTAGES)} {mag} WD{rng.uniform(5, 15):.1f}mm {_pick(rng, DETECTORS)}"
    d.text((3, h - bar + 2), text, fill=fg, font=f)
    x1 = w - 4
    x0 = x1 - max(12, w // 6)
    y = h - bar + bar // 2 + 2
    d.rectangle((x0, y, x1, y + 1), fill=fg)  # the scale bar, its length written above it
    d.text((x0, h - bar + 1), scale, fill=fg, font=font(max(7, bar // 2)))
    return np.asarray(im)


def draw_letter(img: np.ndarray, letter: str, rng) -> np.ndarray:
    """A panel letter in the top-left corner: black on a white box, or bare white, as printed."""
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    size = max(10, img.shape[0] // 10)
    f = font(size)
    text = _pick(rng, (letter, f"({letter})"))
    if rng.random() < 0.5:
        x1, y1 = 4 + size * len(text) * 0.65 + 4, 4 + size + 4
        d.rectangle((3, 3, x1, y1), fill=255)
        d.text((6, 4), text, fill=0, font=f)
    else:
        d.text((5, 4), text, fill=250, font=f, stroke_width=1, stroke_fill=20)
    return np.asarray(im)


def sem_panel(rng, features, h: int, w: int, style: dict, bar: str | None) -> np.ndarray:
    """One fractograph: a texture of `features`, with a data bar ("dark" / "light") or none."""
    img = render(features, rng, h, w, rng.uniform(0, 2 * np.pi), style)
    return data_bar(img, rng, light=bar == "light") if bar else img


def sheet(panels: list[np.ndarray], cols: int, gutter: int, dark: bool, titles: list[str] | None = None,
          margin: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """Panels of one size in a grid: `gutter` px of white (or near-black) between them, a title
    centred above each panel when given. Returns the sheet and each panel's box [l, t, r, b]."""
    h, w = panels[0].shape
    rows = -(-len(panels) // cols)
    bg, ink = (12, 240) if dark else (255, 0)
    band = 0
    if titles:
        f = font(max(9, h // 14))
        band = max(12, h // 14 + 6)
    W = 2 * margin + cols * w + (cols - 1) * gutter
    H = 2 * margin + rows * (band + h) + (rows - 1) * gutter
    im = Image.new("L", (W, H), bg)
    d = ImageDraw.Draw(im)
    boxes = []
    for i, p in enumerate(panels):
        x = margin + (i % cols) * (w + gutter)
        y = margin + (i // cols) * (band + h + gutter)
        if titles:
            tw = d.textlength(titles[i], font=f)
            d.text((x + (w - tw) / 2, y + 1), titles[i], fill=ink, font=f)
        im.paste(Image.fromarray(p), (x, y + band))
        boxes.append([x, y + band, x + w, y + band + h])
    return np.asarray(im), boxes


def plot(rng, h: int = 300, w: int = 400) -> np.ndarray:
    """A line plot (stress-strain curves): a figure the miner must refuse as not a fractograph."""
    im = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = 40, 15, w - 15, h - 35
    d.line((x0, y0, x0, y1, x1, y1), fill=0, width=2)
    f = font(11)
    d.text((x0 + (x1 - x0) // 3, h - 22), "Strain (%)", fill=0, font=f)
    d.text((4, y0), "MPa", fill=0, font=f)
    xs = np.linspace(0, 1, 60)
    for k in range(int(rng.integers(2, 5))):
        top, end = rng.uniform(0.5, 0.95), rng.uniform(0.6, 1.0)
        ys = top * (1 - np.exp(-12 * xs)) * (xs <= end)
        pts = [(x0 + x * end * (x1 - x0), y1 - y * (y1 - y0)) for x, y in zip(xs, ys)]
        d.line(pts, fill=40 * k, width=2)
    return np.asarray(im)

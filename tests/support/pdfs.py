"""Small generated papers for the miner's tests and its throughput benchmark (needs reportlab).

`write_pdf` lays out pages top to bottom: ("p", text) is a wrapped paragraph, ("fig", image,
caption) an embedded image with its caption below, as journals print them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PAGE_W, PAGE_H, MARGIN = 595.0, 842.0, 60.0  # A4 in points


def texture(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A grayscale 'fracture surface': smoothed noise, never near-white (so it has no gutters)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.random((h // 4 + 1, w // 4 + 1))
    a = np.kron(a, np.ones((4, 4)))[:h, :w]  # blocky 4 px grains
    return Image.fromarray((40 + a * 150).astype(np.uint8))


def grid(panels: list[Image.Image], cols: int = 2, gutter: int = 12) -> Image.Image:
    """Panels of one size on a white sheet, `cols` per row, `gutter` px of white between."""
    w, h = panels[0].size
    rows = -(-len(panels) // cols)
    sheet = Image.new("L", (cols * w + (cols - 1) * gutter, rows * h + (rows - 1) * gutter), 255)
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * (w + gutter), (i // cols) * (h + gutter)))
    return sheet


def write_pdf(path: str | Path, pages: list[list[tuple]], title: str | None = None, subject: str | None = None,
              user_password: str | None = None) -> Path:
    from reportlab.pdfgen import canvas

    path = Path(path)
    encrypt = None
    if user_password is not None:
        from reportlab.lib.pdfencrypt import StandardEncryption

        encrypt = StandardEncryption(user_password, ownerPassword=user_password + "-owner")
    from reportlab import rl_config

    # Flate-only image streams, as publishers write them (reportlab's default adds ASCII85,
    # whose pure-Python decoding in pypdf would dominate the throughput benchmark).
    a85, rl_config.useA85 = rl_config.useA85, 0
    try:
        c = canvas.Canvas(str(path), pagesize=(PAGE_W, PAGE_H), encrypt=encrypt, invariant=1)
        _draw(c, pages, title, subject)
    finally:
        rl_config.useA85 = a85
    return path


def _draw(c, pages, title, subject) -> None:
    from reportlab.lib.utils import ImageReader, simpleSplit

    if title:
        c.setTitle(title)
    if subject:
        c.setSubject(subject)
    width = PAGE_W - 2 * MARGIN
    for blocks in pages:
        y = PAGE_H - MARGIN
        for block in blocks:
            if block[0] == "p":
                lines = simpleSplit(block[1], "Helvetica", 10, width)
                for line in lines:
                    c.setFont("Helvetica", 10)
                    c.drawString(MARGIN, y, line)
                    y -= 12
                y -= 12  # blank line between paragraphs
            elif block[0] == "fig":
                img, caption = block[1], block[2]
                w = min(width, 300.0)
                h = w * img.size[1] / img.size[0]
                y -= h
                c.drawImage(ImageReader(img), MARGIN, y, width=w, height=h)
                y -= 14
                for line in simpleSplit(caption, "Helvetica", 9, width):
                    c.setFont("Helvetica", 9)
                    c.drawString(MARGIN, y, line)
                    y -= 11
                y -= 14
            else:
                raise ValueError(f"unknown block {block[0]!r}")
        c.showPage()
    c.save()

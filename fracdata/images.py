"""Decode, validate and normalise one image: the shared core every stage opens images with.

Normalisation (what every image in a built dataset is):
  - fully decoded (a truncated file fails here, not in the middle of training);
  - EXIF orientation applied, then no metadata kept;
  - 8-bit: grayscale `L` when all three channels are equal (most SEM figures are stored as
    RGB; `L` is lossless then and the PNG is ~3x smaller), else `RGB`.
    16-bit and float grayscale are stretched min..max -> 0..255: a 12-bit SEM TIFF would be
    almost black under a fixed /257 scaling, and SEM contrast is an operator setting anyway.
    Palette, CMYK, YCbCr, LAB go through PIL's conversion; an alpha channel is composited
    over white (the page colour of the figures they come from).
A failure raises `ImageReject(reason, detail)` (or `ImageError` from `open_normalised`);
reasons are listed in docs/build.md. The builder's per-image work is `fracdata.build.decode`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fracdata.files import atomic_write_bytes
from fracdata.records import sha256_bytes

ALLOWED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")
# PIL's default PNG settings, named once: the builder and the perf baseline both use them.
PNG_SAVE = {"format": "PNG", "compress_level": 6}
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


@dataclass(frozen=True)
class Bounds:
    min_side: int = 64  # px; below this a fractograph shows no usable feature
    max_pixels: int = 50_000_000  # ~7,071^2; also the decompression-bomb guard
    max_aspect: float = 20.0  # Qwen's resizer refuses > 200; strips this thin are not fractographs


class ImageReject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def to_8bit(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit `L` or `RGB` (see the module docstring for the choices)."""
    if im.mode in _HIGH_DEPTH:
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        scaled = np.zeros(a.shape) if hi == lo else (a - lo) * (255.0 / (hi - lo))
        return Image.fromarray(np.rint(scaled).astype(np.uint8))  # 2-D uint8 -> mode L
    if im.mode == "1":
        return im.convert("L")
    if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode != "L":
        im = im.convert("RGB")
        a = np.asarray(im)
        if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
            im = Image.fromarray(np.ascontiguousarray(a[..., 0]))
    return im


class ImageError(ValueError):
    """An image that cannot be read or converted (the caller turns it into a reject)."""


def open_normalised(source) -> Image.Image:
    """A path, file object or PIL image -> upright 8-bit `L`/`RGB` (EXIF orientation, `to_8bit`).

    The same pixels as `load_normalised` without its bounds (only PIL's decompression-bomb
    guard); every failure, the bomb guard's included, is an `ImageError`.
    """
    try:
        if isinstance(source, Image.Image):
            source.load()
            return to_8bit(ImageOps.exif_transpose(source))
        with Image.open(source) as im:
            im.load()
            return to_8bit(ImageOps.exif_transpose(im))  # a new image: closing the file is safe
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError, EOFError) as e:
        raise ImageError(f"{type(e).__name__}: {e}") from e


def load_normalised(data: bytes, bounds: Bounds | None = None) -> Image.Image:
    """Image file bytes -> a fully decoded, upright, 8-bit `L`/`RGB` image, or ImageReject."""
    bounds = bounds or Bounds()
    if not data:
        raise ImageReject("empty_file", "the file has 0 bytes")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageReject("too_many_pixels", f"{e} (decompression-bomb guard: --max-pixels {bounds.max_pixels})") from e
    except UnidentifiedImageError as e:
        raise ImageReject("not_an_image", f"not a recognised image format (first bytes {data[:8]!r})") from e
    w, h = im.size
    if w * h > bounds.max_pixels:
        raise ImageReject("too_many_pixels", f"{w}x{h} = {w * h} pixels > --max-pixels {bounds.max_pixels}")
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise ImageReject("multi_frame", f"{im.format} with {frames} frames (animated or multi-page)")
    if im.format not in ALLOWED_FORMATS:
        raise ImageReject("unsupported_format", f"{im.format}; allowed: {', '.join(ALLOWED_FORMATS)}")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageReject("decode_error", f"{im.format}: {type(e).__name__}: {e}") from e
    im = to_8bit(im)
    w, h = im.size
    if min(w, h) < bounds.min_side:
        raise ImageReject("too_small", f"{w}x{h}: shorter side < --min-side {bounds.min_side}")
    if max(w, h) > bounds.max_aspect * min(w, h):
        raise ImageReject("extreme_aspect_ratio", f"{w}x{h}: aspect ratio > --max-aspect {bounds.max_aspect:g}")
    return im


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, **PNG_SAVE)
    return buf.getvalue()


def write_png(data: bytes, images_dir: str | Path) -> str:
    """Write PNG bytes as images_dir/<sha256>.png and return the sha256.

    Written to a temporary file and renamed into place (fracdata.files), always: a folder
    reused between runs (`fracdata mine`) may hold a <sha>.png truncated by a killed run,
    and a complete file of that name is rewritten with the same bytes at no harm.
    """
    sha = sha256_bytes(data)
    atomic_write_bytes(Path(images_dir) / f"{sha}.png", data)
    return sha

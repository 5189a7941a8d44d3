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
reasons are listed in docs/formats.md. The builder's per-image work is `fracdata.build.decode`.

Ids: an image's id is `pixel_id` of its normalised pixels, not a hash of the file. A PNG saved
at another compression level, by another Pillow or zlib, or as a lossless TIFF/BMP/WebP of the
same pixels keeps its id (and so its label-cache entries); a lossy re-encode does not. Every
stage that writes or checks an id goes through `pixel_id` / `image_id`.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fracdata.files import atomic_write_bytes

ALLOWED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")
# PIL's default PNG settings, named once: the builder and the perf baseline both use them.
PNG_SAVE = {"format": "PNG", "compress_level": 6}
ID_SCHEME = b"fracdata-pixels-v1"  # bump (and say so in docs/formats.md) if what is hashed ever changes
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


def pixel_id(im: Image.Image) -> str:
    """sha256 of b"fracdata-pixels-v1 MODE WxH\n" + the raw 8-bit pixels, row by row.

    `im` must be normalised (`to_8bit`: mode L or RGB), so the same picture stored as RGB with
    equal channels, as L, or in any lossless file format has one id. Raw L/RGB bytes are plain
    row-major samples in every Pillow version; nothing of the encoder enters.
    """
    if im.mode not in ("L", "RGB"):
        raise ValueError(f"pixel_id needs a normalised L or RGB image, got mode {im.mode}")
    h = hashlib.sha256(ID_SCHEME + f" {im.mode} {im.width}x{im.height}\n".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def image_id(source) -> str:
    """The id of an image file (path, bytes or file object): `pixel_id` after `open_normalised`.

    Raises ImageError when it cannot be decoded. Cost: one full decode (a 1024x768 PNG ~10 ms).
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    return pixel_id(open_normalised(source))


def fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size after shrinking to max_side: 3000x2000 with 1024 -> 1024x683 (2000 * 1024/3000)."""
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def fit(im: Image.Image, max_side: int) -> Image.Image:
    """Shrink (LANCZOS, never enlarge) so the longest side is <= max_side, then `to_8bit` again:
    a crop of a colour figure may be grey, and the id is taken of exactly what is written."""
    size = fitted_size(im.size, max_side)
    if size != im.size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    return to_8bit(im)


def save_png(im: Image.Image, images_dir: str | Path) -> str:
    """Write a normalised image as images_dir/<pixel_id>.png and return the id.

    Written to a temporary file and renamed into place (fracdata.files), always: a folder
    reused between runs (`fracdata mine`) may hold an <id>.png truncated by a killed run, and
    a complete file of that name is rewritten with the same pixels at no harm.
    """
    image = pixel_id(im)
    atomic_write_bytes(Path(images_dir) / f"{image}.png", encode_png(im))
    return image


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, **PNG_SAVE)
    return buf.getvalue()

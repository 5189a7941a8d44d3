"""Images to one form: 8-bit grayscale or RGB, longest side <= max_side, PNG, id = sha256.

The id is the sha256 of the PNG bytes written, so it is only stable when the bytes are. The
8-bit conversion, the PNG settings and the content-addressed write are the builder's own
(fracdata.images), so a mined image and the same image re-normalised by `fracdata build`
come out as the same bytes, hence the same id.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from fracdata.images import ImageError, encode_png, open_normalised, write_png  # noqa: F401  ImageError: re-exported

DEFAULT_MAX_SIDE = 1024  # 1024 px = 32 Qwen3-VL patches of 32 px; LlamaFactory downsizes to 768^2 px anyway
DEFAULT_MIN_SIDE = 64  # the builder's --min-side: smaller images are icons, logos or stray panel letters
MAX_ASPECT = 20.0  # the builder's --max-aspect: thinner strips are rules or scale bars, not fractographs


def load(path_or_image) -> Image.Image:
    """Open (a path or a PIL image), apply EXIF orientation, convert to 8 bits; or ImageError."""
    return open_normalised(path_or_image)


def fitted_size(size: tuple[int, int], max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """The size after shrinking to max_side: 3000x2000 with 1024 -> 1024x683 (2000 * 1024/3000)."""
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def encode(im: Image.Image, max_side: int = DEFAULT_MAX_SIDE) -> bytes:
    """Resize so the longest side is <= max_side (never enlarged) and encode as PNG."""
    size = fitted_size(im.size, max_side)
    if size != im.size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    return encode_png(im)


def write_image(data: bytes, images_dir: Path) -> str:
    """Write PNG bytes as images_dir/<sha256>.png (content-addressed, atomic); return the id."""
    return write_png(data, images_dir)

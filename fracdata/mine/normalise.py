"""Images to one form: 8-bit grayscale or RGB, longest side <= max_side, PNG, id = sha256.

The id is the sha256 of the PNG bytes written, so it is only stable when the bytes are. The
8-bit conversion, the PNG settings and the content-addressed write are the builder's own
(fracdata.images), so a mined image and the same image re-normalised by `fracdata build`
come out as the same bytes, hence the same id.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from fracdata.images import encode_png, to_8bit, write_png

DEFAULT_MAX_SIDE = 1024  # 1024 px = 32 Qwen3-VL patches of 32 px; LlamaFactory downsizes to 768^2 px anyway
DEFAULT_MIN_SIDE = 64  # the builder's --min-side: smaller images are icons, logos or stray panel letters
MAX_ASPECT = 20.0  # the builder's --max-aspect: thinner strips are rules or scale bars, not fractographs


class ImageError(ValueError):
    """An image that cannot be read or converted (the caller turns it into a reject)."""


def load(path_or_image) -> Image.Image:
    """Open (a path or a PIL image), apply EXIF orientation, convert to 8 bits."""
    try:
        im = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
        im.load()
        return to_8bit(ImageOps.exif_transpose(im))
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError, EOFError) as e:
        raise ImageError(f"{type(e).__name__}: {e}") from e


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

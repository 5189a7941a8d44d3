"""Open, validate and normalise one image: the one gate every stage opens images through.

The gate (`open_image`; `load_normalised` and `open_normalised` are its two settings): the file
is checked before PIL reads it (a regular file, not empty: a FIFO would block, a device never
end), the header before any pixel is decoded (format, frames, pixels, and the decoded size
w x h x bands x bytes-per-sample against `Bounds.max_bytes`), and then ANY exception from
opening, decoding or converting is an `ImageReject(reason, detail)` (an `ImageError`, a
ValueError) with a reason of the one vocabulary (fracdata.records.REASONS), never a crash:
Pillow raises OSError, ValueError, SyntaxError, EOFError, struct.error, ... for damaged headers.

What a normalised image is (`to_8bit`, every image of a built dataset): fully decoded (a
truncated file fails here, not in training), EXIF orientation applied and no metadata kept,
8-bit `L` when all three channels are equal (most SEM figures are stored as RGB: `L` is lossless
and the PNG ~3x smaller), else `RGB`. 16-bit and float gray are stretched from their 0.1st to
99.9th percentile to 0..255 (fracdata/stretch.py: a 12-bit SEM TIFF is almost black under a fixed
/257, SEM contrast is an operator setting, and one hot pixel must not set the white point);
palette, CMYK, YCbCr, LAB go through PIL's conversion; alpha is composited over white (the page
colour of the figures). No step holds more than one extra full-size copy (in-place float
arithmetic, the channel check in strips), which keeps `WORK_PER_PIXEL` small.

Ids: an image's id is `pixel_id` of its normalised pixels, not a hash of the file. A PNG saved
at another compression level, by another Pillow or zlib, or as a lossless TIFF/BMP/WebP of the
same pixels keeps its id (and so its label-cache entries); a lossy re-encode does not. Every
stage that writes or checks an id goes through `pixel_id` / `image_id`.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from fracdata.files import atomic_write_bytes

ALLOWED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")
# the file signatures of the allowed formats (a WebP is RIFF....WEBP: RIFF is enough here)
MAGIC = ((b"II*\0", "TIFF"), (b"MM\0*", "TIFF"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"BM", "BMP"),
         (b"RIFF", "WEBP"))
# PIL's default PNG settings, named once: the builder and the perf baseline both use them.
PNG_SAVE = {"format": "PNG", "compress_level": 6}
ID_SCHEME = b"fracdata-pixels-v1"  # bump (and say so in docs/formats.md) if what is hashed ever changes
HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# The gate checks pixels from the header itself (PIL's bomb warning would repeat it); "Corrupt EXIF
# data" and the like are Pillow's notes on a file it still decodes: printed, they read like a crash.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@dataclass(frozen=True)
class Bounds:
    min_side: int = 64  # px; below this a fractograph shows no usable feature
    max_pixels: int = 50_000_000  # ~7,071^2; also the decompression-bomb guard
    max_aspect: float = 20.0  # Qwen's resizer refuses > 200; strips this thin are not fractographs
    # decoded size from the header, w x h x bands x bytes per sample: 50 Mpx of RGBA, CMYK or
    # 32-bit gray is 200 MB; 16-bit RGB or 64-bit samples of that size are refused
    max_bytes: int = 200_000_000
    formats: tuple[str, ...] | None = ALLOWED_FORMATS  # None: any still format PIL reads
    one_frame: bool = True  # False: the first frame of an animation or multi-page file


# open_normalised's setting: no shape rules, any format PIL reads (JATS GIFs), the first frame
ANY = Bounds(min_side=1, max_aspect=float("inf"), formats=None, one_frame=False)


class ImageError(ValueError):
    """An image that cannot be read or converted (the caller turns it into a reject)."""


class ImageReject(ImageError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# Peak bytes per pixel open_image needs per mode (PIL stores L/P/1 in 1 byte, 16-bit in 2, the
# rest in 4), measured on 16 Mpx files (benchmarks/perf/serve_memory.py --modes), rounded up: RGB
# 5.3, CMYK 9.3 (+ RGB copy), RGBA 16.0 (+ RGBA, white, composite), 16-bit 12.0 (+ float64), P 6.3.
WORK_PER_PIXEL = {"1": 2, "L": 2, "P": 7, "RGB": 7, "YCbCr": 7, "LAB": 7, "HSV": 7, "RGBX": 7, "CMYK": 11,
                  "I;16": 14, "I;16L": 14, "I;16B": 14, "I;16N": 14, "I": 18, "F": 18}
WORK_ALPHA = 17  # any mode with alpha, or a palette/gray image with a transparent colour


@dataclass(frozen=True)
class Header:
    """What the header says, before any pixel is decoded."""
    format: str | None
    size: tuple[int, int]
    mode: str
    frames: int = 1
    transparency: bool = False  # a tRNS chunk or GIF transparency: normalised through RGBA

    @property
    def decoded_bytes(self) -> int:
        """w x h x bands x bytes per sample: 7000 x 7000 RGB = 147 MB; 16-bit gray 98 MB."""
        m = ImageMode.getmode(self.mode)
        return self.size[0] * self.size[1] * len(m.bands) * int(m.typestr[-1])

    @property
    def work_bytes(self) -> int:
        """Peak memory open_image needs for it (WORK_PER_PIXEL): 7000 x 7000 RGB = 343 MB."""
        alpha = self.transparency or "A" in self.mode or "a" in self.mode
        return self.size[0] * self.size[1] * (WORK_ALPHA if alpha else WORK_PER_PIXEL.get(self.mode, WORK_ALPHA))


def _first_bytes(fp) -> bytes:
    try:
        return fp.seek(0) or fp.read(8)
    except (OSError, ValueError):
        return b""


def _open(source):
    """(image with its header read, the file it opened or None) for bytes, a path or a binary
    file object; every failure an ImageReject."""
    own = None
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageReject("empty_file", "the file has 0 bytes")
        fp = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        try:  # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
            fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ImageReject("missing_image", f"{source} does not exist") from None
        except (OSError, ValueError) as e:  # a symlink loop, no permission, a NUL in the path, ...
            raise ImageReject("unreadable_image", f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:  # a FIFO or device: never read
            os.close(fd)
            if st.st_size == 0 and stat.S_ISREG(st.st_mode):
                raise ImageReject("empty_file", "the file has 0 bytes")
            raise ImageReject("missing_image", f"{source} is not a regular file (a folder, FIFO, socket or device)")
        fp = own = os.fdopen(fd, "rb")
    else:
        fp = source
        fp.seek(0)
        if not fp.read(1):
            raise ImageReject("empty_file", "the file has 0 bytes")
        fp.seek(0)
    try:
        return Image.open(fp), own
    except Exception as e:  # noqa: BLE001  the gate: Pillow raises ValueError, SyntaxError, struct.error, ...
        failure = _open_failure(e, fp)
        if own is not None:
            own.close()
        raise failure from None


def _open_failure(e: Exception, fp) -> ImageReject:
    if isinstance(e, Image.DecompressionBombError):
        return ImageReject("too_many_pixels", f"DecompressionBombError: {e}")
    if isinstance(e, UnidentifiedImageError):
        head = _first_bytes(fp)
        fmt = next((f for magic, f in MAGIC if head.startswith(magic)), None)
        if fmt is not None:  # PIL knows the format but refused its header (a sample layout no mode holds)
            return ImageReject("decode_error", f"damaged or unsupported {fmt} header (first bytes {head!r})")
        return ImageReject("not_an_image", f"not a recognised image format (first bytes {head!r})")
    if isinstance(e, OSError) and e.errno is not None:  # the OS refused (an I/O error): not the content
        return ImageReject("unreadable_image", f"{type(e).__name__}: {e.strerror or e}")
    return ImageReject("decode_error", f"damaged header: {type(e).__name__}: {e}")


def _check(im: Image.Image, bounds: Bounds) -> Header:
    """The header against the bounds (pixels, decoded bytes, frames, format); ImageReject if not."""
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageReject("decode_error", f"{im.format}: declared size {w}x{h}")
    if w * h > bounds.max_pixels:
        raise ImageReject("too_many_pixels", f"{w}x{h} = {w * h} pixels > --max-pixels {bounds.max_pixels}")
    try:
        header = Header(im.format, (w, h), im.mode, getattr(im, "n_frames", 1), "transparency" in im.info)
        decoded = header.decoded_bytes
    except Exception as e:  # noqa: BLE001  counting frames reads the file; a mode PIL cannot size
        raise ImageReject("decode_error", f"{im.format}: {type(e).__name__}: {e}") from None
    if decoded > bounds.max_bytes:
        raise ImageReject("too_many_pixels", f"{w}x{h} {im.mode} decodes to {decoded / 1e6:.0f} MB > the "
                                             f"{bounds.max_bytes / 1e6:.0f} MB ceiling (w x h x bands x bytes per sample)")
    if header.frames > 1 and bounds.one_frame:
        raise ImageReject("multi_frame", f"{im.format} with {header.frames} frames (animated or multi-page)")
    if bounds.formats is not None and im.format not in bounds.formats:
        raise ImageReject("unsupported_format", f"{im.format}; allowed: {', '.join(bounds.formats)}")
    return header


def inspect(source, bounds: Bounds | None = None) -> Header:
    """The header of bytes, a path or a binary file, checked against `bounds`; no pixel decoded."""
    im, own = _open(source)
    try:
        return _check(im, bounds or Bounds())
    finally:
        _release(own, source)


def _release(own, source) -> None:
    """Close the file the gate opened (a multi-frame file stays open after load()); a caller's
    file object is the caller's to close, so it is only rewound."""
    if own is not None:
        own.close()
    elif hasattr(source, "seek"):
        source.seek(0)


def open_image(source, bounds: Bounds | None = None) -> Image.Image:
    """The gate: bytes, a path, a binary file or a PIL image -> a fully decoded, upright, 8-bit
    `L`/`RGB` image within `bounds` (default `Bounds()`), or ImageReject."""
    bounds = bounds or Bounds()
    own = not isinstance(source, Image.Image)
    im, opened = _open(source) if own else (source, None)
    try:
        _check(im, bounds)
        im.load()
        if own:
            ImageOps.exif_transpose(im, in_place=True)  # no copy when there is nothing to turn
        else:
            im = ImageOps.exif_transpose(im)  # a new image: the caller's is left as it was
        im = to_8bit(im)
    except ImageReject:
        raise
    except Exception as e:  # noqa: BLE001  the gate: any failure to decode or convert is a reject
        raise ImageReject("decode_error", f"{im.format or 'image'}: {type(e).__name__}: {e}") from None
    finally:
        if own:
            _release(opened, source)
    w, h = im.size
    if min(w, h) < bounds.min_side:
        raise ImageReject("too_small", f"{w}x{h}: shorter side < --min-side {bounds.min_side}")
    if max(w, h) > bounds.max_aspect * min(w, h):
        raise ImageReject("extreme_aspect_ratio", f"{w}x{h}: aspect ratio > --max-aspect {bounds.max_aspect:g}")
    return im


def load_normalised(data, bounds: Bounds | None = None) -> Image.Image:
    return open_image(data, bounds)  # the builder's setting: Bounds() unless given


def open_normalised(source) -> Image.Image:
    return open_image(source, ANY)  # no shape rules (label, fracbench, mine); bounds still hold


def _equal_channels(im: Image.Image, rows: int = 512) -> bool:
    """All three channels of an RGB image equal, checked in strips (a copy of 512 rows at a time,
    not three full-size arrays: 7000 x 7000 RGB would need ~300 MB more at once)."""
    for y in range(0, im.height, rows):
        a = np.asarray(im.crop((0, y, im.width, min(im.height, y + rows))))
        if not ((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()):
            return False
    return True


def to_8bit(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit `L` or `RGB` (the choices: the module docstring)."""
    if im.mode in HIGH_DEPTH:  # a percentile stretch, robust to hot pixels (fracdata/stretch.py)
        from fracdata.stretch import stretch_to_8bit

        return stretch_to_8bit(im)
    if im.mode == "1":
        return im.convert("L")
    if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
        del rgba, white
    if im.mode != "L":
        if im.mode != "RGB":
            im = im.convert("RGB")
        if _equal_channels(im):
            im = im.getchannel(0)
    return im


def pixel_id(im: Image.Image) -> str:
    """sha256 of b"fracdata-pixels-v1 MODE WxH\n" + the raw 8-bit pixels, row by row. `im` must be
    normalised (`to_8bit`: L or RGB), so RGB with equal channels, L, or any lossless format of one
    picture has one id; raw L/RGB bytes are row-major samples in every Pillow, nothing of the encoder."""
    if im.mode not in ("L", "RGB"):
        raise ValueError(f"pixel_id needs a normalised L or RGB image, got mode {im.mode}")
    h = hashlib.sha256(ID_SCHEME + f" {im.mode} {im.width}x{im.height}\n".encode())
    # 512 rows at a time, the same bytes in the same order: im.tobytes() of 49 Mpx RGB would hold
    # its 147 MB twice (PIL joins the encoded chunks)
    for y in range(0, im.height, 512):
        h.update(im.crop((0, y, im.width, min(im.height, y + 512))).tobytes())
    return h.hexdigest()


def image_id(source) -> str:
    """`pixel_id` after `open_normalised` of a path, bytes or file object, or ImageReject. Cost: one
    full decode (a 1024x768 PNG ~10 ms)."""
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
    """Write a normalised image as images_dir/<pixel_id>.png (atomically, always: a folder reused
    by `fracdata mine` may hold an <id>.png a killed run truncated) and return the id."""
    image = pixel_id(im)
    atomic_write_bytes(Path(images_dir) / f"{image}.png", encode_png(im))
    return image


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, **PNG_SAVE)
    return buf.getvalue()

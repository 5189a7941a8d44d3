"""Decode, validate and normalise one image; rotate it; hash it. The builder's per-image work.

Everything here runs in worker processes (`run_pool`), so the functions are plain and
picklable and return small dicts: the encoded PNG goes straight to disk, content-addressed.

Normalisation (what every image in a built dataset is):
  - fully decoded (a truncated file fails here, not in the middle of training);
  - EXIF orientation applied, then no metadata kept;
  - 8-bit: grayscale `L` when all three channels are equal (most SEM figures are stored as
    RGB; `L` is lossless then and the PNG is ~3x smaller), else `RGB`.
    16-bit and float grayscale are stretched min..max -> 0..255: a 12-bit SEM TIFF would be
    almost black under a fixed /257 scaling, and SEM contrast is an operator setting anyway.
    Palette, CMYK, YCbCr, LAB go through PIL's conversion; an alpha channel is composited
    over white (the page colour of the figures they come from).
A failure raises `ImageReject(reason, detail)`; reasons are listed in docs/build.md.
"""

from __future__ import annotations

import io
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from fracdata.atomic import atomic_write_bytes
from fracdata.records import sha256_bytes

ALLOWED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")
# PIL's default PNG settings, named once: the builder and the perf baseline both use them.
PNG_SAVE = {"format": "PNG", "compress_level": 6}
# The 8 symmetries of the square, as PIL transposes. "rot90" is 90 degrees counter-clockwise.
DIHEDRAL = {
    "id": None,
    "rot90": Image.Transpose.ROTATE_90,
    "rot180": Image.Transpose.ROTATE_180,
    "rot270": Image.Transpose.ROTATE_270,
    "flip_lr": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_tb": Image.Transpose.FLIP_TOP_BOTTOM,
    "transpose": Image.Transpose.TRANSPOSE,
    "transverse": Image.Transpose.TRANSVERSE,
}
ROTATIONS = {90: "rot90", 180: "rot180", 270: "rot270"}
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


_BOUNDS = Bounds()


def init_worker(bounds: Bounds) -> None:
    """Pool initializer: PIL's globals are per process, so each worker sets its own."""
    global _BOUNDS
    _BOUNDS = bounds
    # PIL raises DecompressionBombError above 2x this before decoding anything; between 1x
    # and 2x it only warns, and `load_normalised` rejects those itself.
    Image.MAX_IMAGE_PIXELS = bounds.max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a library may have switched it on: never here
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


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
    bounds = bounds or _BOUNDS
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

    Written to a temporary file and renamed into place (fracdata.atomic), always: a folder
    reused between runs (`fracdata mine`) may hold a <sha>.png truncated by a killed run,
    and a complete file of that name is rewritten with the same bytes at no harm.
    """
    sha = sha256_bytes(data)
    atomic_write_bytes(Path(images_dir) / f"{sha}.png", data)
    return sha


def dihedral_hashes(im: Image.Image) -> list[int]:
    """64-bit perceptual hashes of the image under all 8 rotations/flips (`DIHEDRAL` order).

    Each equals `int(str(imagehash.phash(T(im))), 16)` (tested): imagehash's own steps (32x32
    grayscale LANCZOS thumbnail, 2-D DCT with scipy.fftpack, top-left 8x8 > its median), run
    once on a stack of the 8 transposed thumbnails. Shrinking commutes with these transposes,
    so 8 hashes cost about one.
    """
    import scipy.fftpack

    a = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS))
    # the 8 transposes of DIHEDRAL, as numpy index views (exact, and cheaper than PIL's)
    stack = np.stack([a, np.rot90(a, 1), np.rot90(a, 2), np.rot90(a, 3), a[:, ::-1], a[::-1, :], a.T, a[::-1, ::-1].T])
    dct = scipy.fftpack.dct(scipy.fftpack.dct(stack, axis=1), axis=2)[:, :8, :8]
    bits = dct > np.median(dct.reshape(8, 64), axis=1)[:, None, None]
    return [int.from_bytes(np.packbits(b.reshape(64)).tobytes(), "big") for b in bits]


def process_image(task: tuple[str, str | None, str | None, tuple[int, ...]]) -> dict:
    """(path, expected sha256 or None, images dir or None, rotations) -> result dict.

    {"ok": True, "sha": raw sha256, "png": sha256 of the written PNG or None, "rotated": [sha256
    of each rotated copy], "size": [w, h], "mode": "L"|"RGB", "hashes": [8 ints]} or
    {"ok": False, "reason": ..., "detail": ...}. Rotated copies (lossless transposes) are
    encoded here, from the one decode, before the split is known: the builder deletes the
    copies of images that end up in validation or as duplicates (about 10% wasted encodes
    against a second decode of every training image).
    """
    path, expected, images_dir, angles = task
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return {"ok": False, "reason": "unreadable", "detail": f"{type(e).__name__}: {e.strerror or e}"}
    sha = sha256_bytes(data)
    if data and expected is not None and sha != expected:
        return {"ok": False, "reason": "id_mismatch", "detail": f"sha256 of the file is {sha}, the record says {expected}"}
    try:
        im = load_normalised(data)
    except ImageReject as e:
        return {"ok": False, "reason": e.reason, "detail": e.detail}
    png = write_png(encode_png(im), images_dir) if images_dir else None
    rotated = [write_png(encode_png(im.transpose(DIHEDRAL[ROTATIONS[a]])), images_dir) for a in angles] if images_dir else []
    return {"ok": True, "sha": sha, "png": png, "rotated": rotated, "size": list(im.size), "mode": im.mode,
            "hashes": dihedral_hashes(im)}


def run_pool(fn, tasks: list, workers: int, bounds: Bounds, desc: str) -> list:
    """Map fn over tasks in `workers` processes, in order (so the output is deterministic)."""
    if not tasks:
        return []
    import scipy.fftpack  # noqa: F401  imported once here, inherited by forked workers (~0.2 s each)
    from tqdm import tqdm

    # ~8 chunks per worker: big enough to amortise pickling, small enough to balance the load.
    chunksize = max(1, min(32, len(tasks) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(bounds,)) as ex:
        it = ex.map(fn, tasks, chunksize=chunksize)
        return list(tqdm(it, total=len(tasks), desc=desc, unit="img", disable=None, file=sys.stderr, leave=False))

"""The builder's per-image work, run in worker processes: decode, rotate, encode, hash.

The functions are plain and picklable and return small dicts; the encoded PNGs go straight to
disk, content-addressed. Normalisation itself is the shared core's (`fracdata.images`).
"""

from __future__ import annotations

import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from fracdata.images import Bounds, ImageReject, encode_png, load_normalised, write_png
from fracdata.records import sha256_bytes

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
_BOUNDS = Bounds()  # this worker's bounds (set by init_worker)


def init_worker(bounds: Bounds) -> None:
    """Pool initializer: PIL's globals are per process, so each worker sets its own."""
    global _BOUNDS
    _BOUNDS = bounds
    # PIL raises DecompressionBombError above 2x this before decoding anything; between 1x
    # and 2x it only warns, and `load_normalised` rejects those itself.
    Image.MAX_IMAGE_PIXELS = bounds.max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a library may have switched it on: never here
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


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
        im = load_normalised(data, _BOUNDS)
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

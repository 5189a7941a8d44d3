"""The builder's per-image work, run in worker processes: decode, check the id, rotate, encode, hash.

Each `Job` comes back as `(job.key, Decoded | Failed)`, filed in a dict by that key, never by
position; the encoded PNGs go straight to disk as images/<pixel id>.png. Normalisation and
ids are the shared core's (`fracdata.images`, whose gate turns any failure to open or decode a
file into a reason); keypoints for the gold guard are overlap.py's. Workers die with the build:
each asks the kernel for SIGKILL when its parent dies (Linux PR_SET_PDEATHSIG), so a killed
build leaves no worker decoding on, nor holding the output lock it inherited.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from fracdata.dataset import lookup, masks, overlap, selfcheck
from fracdata.images import Bounds, ImageReject, open_image, pixel_id, save_png
from fracdata.stretch import range_note

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
_GOLD = None  # this worker's lookup.GoldSet, or None


def die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op), and
    exit now if the parent is already gone (it died before the request took effect)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def init_worker(bounds: Bounds, gold=None, parent: int | None = None) -> None:
    """Pool initializer: PIL's globals are per process, so each worker sets its own."""
    global _BOUNDS, _GOLD
    if parent is not None:
        die_with(parent)
    _BOUNDS, _GOLD = bounds, gold
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


@dataclass(frozen=True)
class Job:
    key: str  # what the result is filed under: the record's id (a manual file's path before it has one)
    path: str
    expected: str | None  # the record's id, checked against the pixels; None: compute it
    images_dir: str | None = None  # write <id>.png (and the rotated copies) here
    rotations: tuple[int, ...] = ()
    gold: bool = False  # keypoints for the gold index instead of a lookup in it
    regions: bool = False  # training: keypoints, looked up in the gold index, probes kept for the split
    scales: tuple[float, ...] = ()  # gold: the work scales the training images use (overlap.gold_factors)


@dataclass(frozen=True)
class Decoded:
    id: str  # pixel id (= the record's id once checked); the PNG is images/<id>.png
    size: tuple[int, int]
    mode: str  # L | RGB
    rotated: tuple[str, ...]  # ids (= file names) of the rotated copies, in --rotations order
    hashes: tuple[int, ...]  # 8 dihedral phashes
    keypoints: object = ()  # gold: {scale: (Keypoints, mirrored Keypoints)} for the GoldSet
    overlaps: tuple = ()  # training: overlap.Overlap per gold image it shares a region with
    range_note: str | None = None  # a 16-bit/float image whose dynamic range was degenerate (fracdata/stretch.py)
    weak: bool = False  # gold: a quarter crop of it would not be caught (selfcheck.py)
    probe: object = None  # training: lookup.Probe, for the split's region check (regions.py)


@dataclass(frozen=True)
class Failed:
    reason: str
    detail: str


def process_image(job: Job) -> tuple[str, Decoded | Failed]:
    """One image: read, normalise, check the id, write PNGs, hash; (job.key, result).

    Rotated copies (lossless transposes) are encoded here, from the one decode, before the
    split is known: the builder deletes the copies of images that end up in validation or as
    duplicates (about 10% wasted encodes against a second decode of every training image).
    With a gold index (init_worker), training images are also looked up in it (overlap.py).
    """
    try:
        im = open_image(Path(job.path), _BOUNDS)  # the gate: never raises anything but ImageReject
    except ImageReject as e:
        return job.key, Failed(e.reason, e.detail)
    image, note = pixel_id(im), range_note(im)
    if job.expected is not None and image != job.expected:
        return job.key, Failed("id_mismatch", f"its pixels hash to {image}, the record says {job.expected} "
                                              "(ids are sha256 of the decoded pixels: docs/formats.md)")
    rotated = ()
    if job.images_dir:
        save_png(im, job.images_dir)
        rotated = tuple(save_png(im.transpose(DIHEDRAL[ROTATIONS[a]]), job.images_dir) for a in job.rotations)
    kps, overlaps, weak, probe = (), (), False, None
    gray = np.asarray(im.convert("L"))
    mask, box = masks.overlay_mask(gray) if job.gold or job.regions else (None, masks.specimen_box(gray))
    if job.gold:
        kps = overlap.gold_keypoints(im, overlap.gold_factors(im.size, job.scales))
        weak = not selfcheck.self_check(im, kps)
    elif job.regions:
        scale = overlap.work_factor(im.size)
        kp = overlap.keypoints(im, overlap.N_TRAIN, (mask, box), scale)
        probe = lookup.probe_set(kp)
        if _GOLD is not None and len(_GOLD):
            overlaps = _GOLD.query(kp, probe, scale)
    # copies are judged on the specimen: two fields under one microscope's data bar are 6 bits apart
    # in a whole-image phash (issue 22), ~30 apart without it
    hashes = dihedral_hashes(im.crop(box) if box != (0, 0, *im.size) else im)
    return job.key, Decoded(image, im.size, im.mode, rotated, tuple(hashes), kps, overlaps, note, weak, probe)


def run_pool(jobs: list[Job], workers: int, bounds: Bounds, desc: str, gold=None) -> dict[str, Decoded | Failed]:
    """{job.key: result} over `workers` processes; `gold`: a lookup.GoldSet to look training images up in."""
    if not jobs:
        return {}
    import scipy.fftpack  # noqa: F401  imported once here, inherited by forked workers (~0.2 s each)
    from tqdm import tqdm

    # ~8 chunks per worker: big enough to amortise pickling, small enough to balance the load.
    chunksize = max(1, min(32, len(jobs) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, initializer=init_worker,
                             initargs=(bounds, gold, os.getpid())) as ex:
        it = ex.map(process_image, jobs, chunksize=chunksize)
        return dict(tqdm(it, total=len(jobs), desc=desc, unit="img", disable=None, file=sys.stderr, leave=False))

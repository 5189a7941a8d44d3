"""The gold guard's overlay detection (fracdata/dataset/masks.py) and pixel check (verify.py), against
the synthetic overlays' own masks (fracdata/synth/overlays.py): data bars of every microscope style,
at every size, PNG and JPEG; lettering; and what a shared bar and letter do to the verdict."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fracdata.dataset import masks, overlap, verify
from fracdata.synth import overlays, pairs


def jpeg(a: np.ndarray, q: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("L"))


def barred(k: int, w: int, mag: int = 1000):
    """(image with a data bar, bar rows): microscope k of the pool, a specimen of kind k % 7."""
    scope = overlays.microscopes(0)[k % 8]
    bar = overlays.data_bar(scope, mag, w).shape[0]
    spec = pairs.specimen(1000 + k, w * 3 // 4 - bar, w)
    return overlays.with_bar(spec, scope, mag)[0], bar


@pytest.mark.parametrize("w", [96, 128, 512])
def test_data_bars_of_every_microscope_are_found_png_and_jpeg(w):
    found = {"png": 0, "jpeg": 0}
    for k in range(8):  # 4 layouts (JEOL, Hitachi, FEI, Zeiss), dark and light bars, 8 instruments
        img, bar = barred(k, w, (500, 1000, 2000, 5000)[k % 4])
        for fmt, a in (("png", img), ("jpeg", jpeg(img))):
            top, bottom, left, right = masks.bars(a)
            found[fmt] += (0 <= bottom - bar <= 2) and top == left == right == 0  # within the blurred edge row
    assert found == {"png": 8, "jpeg": 8}


def test_no_bar_on_plain_specimens_and_a_turned_bar_on_its_side():
    plain = [pairs.specimen(2000 + k, 96 + 32 * (k % 3), 128, pairs.KINDS[k % 7]) for k in range(21)]
    assert [masks.bars(a) for a in plain] == [(0, 0, 0, 0)] * 21
    img, bar = barred(2, 128)
    assert masks.bars(np.rot90(img, 1))[3] in (bar, bar + 1)  # turned 90 deg counter-clockwise: the bar is on the right
    assert masks.bars(np.rot90(img, 3))[2] in (bar, bar + 1)  # clockwise: on the left
    assert masks.bars(np.rot90(img, 2))[0] in (bar, bar + 1)  # upside down: on top
    big, bar = barred(3, 1600)  # scanned shrunk: the answer scaled back, rounded out
    assert bar <= masks.bars(big)[1] <= bar + 8


def test_lettering_arrows_and_boxes_are_masked_and_the_specimen_is_not():
    rng = np.random.default_rng(0)
    spec = pairs.specimen(7, 384, 512, "dimple_equiaxed")
    drawn, truth = overlays.decorate(spec, rng, letter="b", lettering=overlays.Lettering("(a)", "tl", True, True, 0.17),
                                     arrows=2, circles=1, labels=1, box=(0.5, 0.5, 0.9, 0.9))
    mask, box = masks.overlay_mask(drawn)
    assert box == (0, 0, 512, 384)  # no bar
    assert mask[truth].mean() > 0.6  # most overlay pixels (the faint anti-aliased rims are what is left)
    assert mask[~truth].mean() < 0.05  # almost no specimen


def test_a_shared_bar_and_letter_do_not_make_two_fields_one():
    """Two different fields, one data bar, one '(a)': correlated over all pixels (the old check) they
    pass the old 0.6 bar; block by block (the median over the specimen) they are unrelated."""
    a, b = pairs.distinct(2, (384, 512), seed=11)
    ka, kb = (overlap.keypoints(Image.fromarray(x), overlap.N_TRAIN) for x in (a, b))
    identity = np.float64([[1, 0, 0], [0, 1, 0]])
    x, y = (verify._highpass(t.astype(np.float32)) for t in (a, b))
    whole = float(np.corrcoef(x.ravel(), y.ravel())[0, 1])  # every pixel, bar and letter included
    median, blocks = verify.block_correlation(kb, ka, identity)
    assert whole > 0.4 and median < 0.1 and blocks > 100, (whole, median, blocks)
    assert verify.match(kb, ka) is None
    # while a crop of the same field with its own bar and letter matches, block by block
    parent, crop = pairs.related("crop + JPEG q75", 103, (384, 512))
    found = verify.match(overlap.keypoints(Image.fromarray(crop), overlap.N_TRAIN),
                         overlap.keypoints(Image.fromarray(parent), overlap.N_TRAIN))
    assert found is not None and found.correlation > 0.8 and abs(found.scale - 1) < 0.02

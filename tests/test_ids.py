"""Ids survive an encoder change: the same article mined at two PNG compression levels gives the
same ids, and labelling the second manifest is answered from the label cache (nothing paid twice)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import fracdata.images
from fracdata.cli import main
from fracdata.images import ImageError, image_id, pixel_id
from fracdata.mine.pipeline import Settings, mine
from tests.support.jats_kit import write_article
from tests.support.openai_server import OpenAIStub

KEY = "sk-proj-TESTKEY-0123456789abcdef"


def manifest_ids(path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_pixel_id_is_the_pixels_not_the_file(tmp_path):
    a = (np.arange(96 * 64) % 251).astype(np.uint8).reshape(64, 96)
    im = Image.fromarray(a)
    files = {}
    for name, kw in {"c0.png": {"compress_level": 0}, "c9.png": {"compress_level": 9}, "x.tif": {}, "x.bmp": {},
                     "x.webp": {"lossless": True}, "rgb.png": {}}.items():
        (im.convert("RGB") if name == "rgb.png" else im).save(tmp_path / name, **kw)
        files[name] = (tmp_path / name).read_bytes()
    assert len(set(files.values())) == len(files)  # six different files ...
    assert {image_id(tmp_path / n) for n in files} == {pixel_id(im)}  # ... one picture, one id
    im.save(tmp_path / "q.jpg", quality=90)
    assert image_id(tmp_path / "q.jpg") != pixel_id(im)  # a lossy re-encode is other pixels
    assert image_id(files["c9.png"]) == pixel_id(im)  # bytes work too
    # mode and size are hashed with the pixels: the same bytes as 64x96 or as 48x128 are other images
    assert len({pixel_id(Image.frombytes("L", size, a.tobytes())) for size in ((96, 64), (64, 96), (128, 48))}) == 3
    with pytest.raises(ValueError):
        pixel_id(Image.new("RGBA", (8, 8)))  # only normalised images have ids
    with pytest.raises(ImageError):
        image_id(b"not an image")


def test_two_png_compression_levels_give_the_same_ids_and_the_label_cache_hits(tmp_path, monkeypatch, capsys):
    write_article(tmp_path / "papers" / "PMC1")
    runs = {}
    for level in (1, 9):
        monkeypatch.setattr(fracdata.images, "PNG_SAVE", {"format": "PNG", "compress_level": level})
        out = tmp_path / f"mined{level}"
        mine([str(tmp_path / "papers")], out, Settings())
        runs[level] = out
    ids1, ids9 = manifest_ids(runs[1] / "manifest.jsonl"), manifest_ids(runs[9] / "manifest.jsonl")
    assert len(ids1) == 5 and ids1 == ids9
    for i in ids1:  # other bytes, same pixels, same id
        b1, b9 = (runs[1] / "images" / f"{i}.png").read_bytes(), (runs[9] / "images" / f"{i}.png").read_bytes()
        assert b1 != b9 and image_id(b1) == image_id(b9) == i

    answer = {"image_type": "SEM fractograph", "features": [{"id": "dimple_equiaxed", "evidence": "cups"}],
              "material": "316L", "magnification": None, "rationale": "dimples"}
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cache = tmp_path / "labels.cache.sqlite"
    with OpenAIStub(responder=lambda kind, body: answer, api_key=KEY) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        for level in (1, 9):
            argv = ["label", "--manifest", str(runs[level] / "manifest.jsonl"), "--out", str(tmp_path / f"l{level}.jsonl"),
                    "--cache", str(cache)]
            assert main(argv) == 0
            if level == 1:
                asked = stub.n
        assert asked == 5 and stub.n == 5  # the second manifest cost nothing: every label came from the cache
    printed = capsys.readouterr().out
    assert "5 already in" in printed and "0 to ask" in printed
    labelled = [json.loads(line) for line in (tmp_path / "l9.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in labelled) == sorted(ids9)

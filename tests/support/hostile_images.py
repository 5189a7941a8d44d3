"""Hostile image files for tests/test_hostile_images.py and benchmarks/perf/serve_memory.py, made
in the test (nothing stored): damaged headers for every allowed format, truncations, zero bytes,
bombs by header, huge declared sizes, odd modes (kept) and sample layouts no PIL mode holds
(rejected), multi-frame files, EXIF garbage, text named .png,
and seeded mutations of good images (the serve fuzz).

`CORPUS` maps a file name to its bytes; `good` ones decode (`GOOD`), the others are rejected by
the gate with the reason in `EXPECT` (a class of reasons where Pillow's own error decides).
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

BROKEN = {"decode_error", "not_an_image"}  # what a damaged file may be, by where the damage falls


def texture(seed: int, size=(160, 120), mode: str = "RGB") -> Image.Image:
    """Seeded blocky noise, distinct per seed (so two good files are never duplicates)."""
    rng = np.random.default_rng(seed)
    bands = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    small = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, bands), dtype=np.uint8)
    big = np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))[: size[1], : size[0]]
    if mode == "RGBA":
        big[..., 3] = 255 - (np.arange(size[0]) % 200).astype(np.uint8)[None, :]
    return Image.fromarray(np.ascontiguousarray(big[..., 0] if bands == 1 else big), mode)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(w: int, h: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose IHDR (valid CRC) declares w x h, followed by one tiny IDAT: a bomb by header."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def bmp_header(w: int, h: int, bpp: int = 24, header_size: int = 40) -> bytes:
    info = struct.pack("<IiiHHIIiiII", header_size, w, h, 1, bpp, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\0" * 16


def tiff_header(w: int, h: int) -> bytes:
    """A little-endian TIFF declaring w x h 8-bit gray, with one 16-byte strip."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 8 + 4), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\0" * 16


def tiff_raw(w: int, h: int, samples: int, bits: int, photometric: int, sample_format: int = 1, seed: int = 0) -> bytes:
    """An uncompressed little-endian TIFF of seeded noise with any sample layout, PIL-readable or not:
    photometric 1 gray, 2 RGB, 5 CMYK, 8 CIELab; sample format 1 unsigned, 2 signed, 3 float."""
    n = w * h * samples * bits // 8
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, samples, bits), (259, 3, 1, 1), (262, 3, 1, photometric),
            (273, 4, 1, 0), (277, 3, 1, samples), (278, 4, 1, h), (279, 4, 1, n), (339, 3, 1, sample_format)]
    bits_at = 8 + 2 + 12 * len(tags) + 4  # BitsPerSample values past the IFD when there are several
    data_at = bits_at + (2 * samples if samples > 1 else 0)
    ifd = b""
    for tag, kind, count, value in tags:
        value = {258: bits_at if samples > 1 else value, 273: data_at}.get(tag, value)
        ifd += struct.pack("<HHII", tag, kind, count, value) if kind == 4 or (tag == 258 and samples > 1) \
            else struct.pack("<HHIHH", tag, kind, count, value, 0)
    extra = struct.pack(f"<{samples}H", *[bits] * samples) if samples > 1 else b""
    return b"II*\0" + struct.pack("<IH", 8, len(tags)) + ifd + b"\0\0\0\0" + extra + data


def png_rgb48(w: int, h: int, seed: int) -> bytes:
    """A 16-bit-per-channel RGB PNG (PIL reads it as 8-bit RGB)."""
    a = np.random.default_rng(seed).integers(0, 65536, (h, w * 3), dtype=np.uint16).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in a)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def exif_with(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def exif_orientation_as_text() -> bytes:
    """EXIF whose Orientation tag (0x0112, a SHORT) is stored as the ASCII text "sideways"."""
    text = b"sideways\0"
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 2, len(text), 26) + b"\0\0\0\0"
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + text


def _multi(fmt: str, seed: int, **kw) -> bytes:
    frames = [texture(seed + s, (96, 96)) for s in range(3)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)


def corpus() -> dict[str, bytes]:
    """name -> bytes. Names ending in a format's suffix even where the content is something else."""
    good = {
        "good.png": encode(texture(1), "PNG"),
        "good.jpg": encode(texture(2), "JPEG", quality=90),
        "good.tif": encode(texture(3), "TIFF"),
        "good.bmp": encode(texture(4), "BMP"),
        "good.webp": encode(texture(5), "WEBP", lossless=True),
    }
    c = dict(good)
    # damaged headers, one or more per allowed format
    c["bmp_bad_header_type.bmp"] = b"BM" + struct.pack("<IHHI", 34, 0, 0, 26) + struct.pack("<I", 12345) + b"\0" * 16
    c["bmp_negative_bpp.bmp"] = bmp_header(100, 100, bpp=7)
    c["bmp_zero_width.bmp"] = bmp_header(0, 100)
    ihdr = bytearray(good["good.png"])
    ihdr[25] = 9  # colour type 9 does not exist (CRC left stale too)
    c["png_bad_colour_type.png"] = bytes(ihdr)
    c["png_bad_depth.png"] = png_header_only(100, 100, depth=3, colour=2)
    c["png_zero_width.png"] = png_header_only(0, 100)
    c["jpeg_garbage_after_soi.jpg"] = b"\xff\xd8\xff\xc0\x00\x11\x08" + b"\xff" * 40
    c["jpeg_sof_zero_components.jpg"] = b"\xff\xd8\xff\xc0\x00\x08\x08\x00\x10\x00\x10\x00" + b"\xff\xd9"
    c["tiff_ifd_past_end.tif"] = b"II*\0" + struct.pack("<I", 10_000_000)
    c["tiff_garbage_ifd.tif"] = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 500) + b"\xab" * 64
    c["webp_bad_chunk.webp"] = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + struct.pack("<I", 18) + b"\x9d\x01\x2a" * 6
    # truncated files (every format), zero bytes, text named .png, another format
    for name, data in good.items():
        c["truncated_" + name] = data[: len(data) // 2]
        c["header_only_" + name] = data[:40]
    c["empty.png"] = b""
    c["text.png"] = b"just some text, not an image\n" * 4
    c["html.jpg"] = b"<!doctype html><html><body>404</body></html>"
    c["still.gif"] = encode(texture(6).convert("P"), "GIF")
    c["icon.ico"] = encode(texture(7, (64, 64)), "ICO")
    # bombs and huge sizes by header (nothing behind them)
    c["bomb_png_100k.png"] = png_header_only(100_000, 100_000)
    c["huge_png_60mpx.png"] = png_header_only(10_000, 6_000)
    c["bomb_bmp.bmp"] = bmp_header(30_000, 30_000)
    c["huge_tiff.tif"] = tiff_header(9_000, 9_000)
    # odd modes that are real images (kept)
    c["cmyk.jpg"] = encode(texture(8, mode="CMYK"), "JPEG", quality=90)
    c["gray16.png"] = encode(Image.fromarray((np.arange(160 * 120).reshape(120, 160) * 3).astype(np.uint16)), "PNG")
    c["gray16.tif"] = encode(Image.fromarray(np.asarray(texture(19, mode="L")).astype(np.uint16) * 200 + 999), "TIFF")
    c["float.tif"] = encode(Image.fromarray(np.asarray(texture(25, mode="L")).astype(np.float32) / 7), "TIFF")
    c["palette_alpha.png"] = encode(texture(9).convert("P"), "PNG", transparency=3)
    c["rgba.png"] = encode(texture(10, mode="RGBA"), "PNG")
    c["la.png"] = encode(texture(11, mode="RGBA").convert("LA"), "PNG")
    c["bilevel.bmp"] = encode(texture(12).convert("1"), "BMP")
    c["flat_gray16.tif"] = encode(Image.new("I;16", (160, 120), 700), "TIFF")
    c["tiff_rgb48.tif"] = tiff_raw(160, 120, 3, 16, 2, seed=31)
    c["tiff_lab.tif"] = tiff_raw(160, 120, 3, 8, 8, seed=32)
    c["tiff_signed16.tif"] = tiff_raw(160, 120, 1, 16, 1, sample_format=2, seed=33)
    c["png_rgb48.png"] = png_rgb48(160, 120, seed=34)
    # wrong modes: sample layouts no PIL mode holds (PIL cannot name a mode for them)
    c["tiff_two_samples.tif"] = tiff_raw(160, 120, 2, 8, 1, seed=35)
    c["tiff_float64.tif"] = tiff_raw(160, 120, 1, 64, 1, sample_format=3, seed=36)
    c["tiff_cmyk_3_samples.tif"] = tiff_raw(160, 120, 3, 8, 5, seed=37)
    c["tiff_5_samples.tif"] = tiff_raw(160, 120, 5, 8, 2, seed=38)
    # multi-frame files
    c["multi_page.tif"] = _multi("TIFF", 60)
    c["animated.png"] = _multi("PNG", 63)
    c["animated.webp"] = _multi("WEBP", 66, lossless=True)
    c["animated.gif"] = _multi("GIF", 69)
    # EXIF orientation garbage: an unknown value, a tag of the wrong type, a blob that is no EXIF
    # (all ignored: the pixels are fine, and PIL reads no orientation from them)
    c["exif_orientation_99.jpg"] = encode(texture(13), "JPEG", exif=exif_with(99))
    c["exif_orientation_6.png"] = encode(texture(14), "PNG", exif=exif_with(6))
    c["exif_garbage.jpg"] = encode(texture(15), "JPEG", exif=b"Exif\0\0" + b"\xde\xad\xbe\xef" * 16)
    c["exif_orientation_text.jpg"] = encode(texture(16), "JPEG", exif=exif_orientation_as_text())
    # shapes the stages refuse
    c["tiny.png"] = encode(texture(17, (20, 20)), "PNG")
    c["sliver.png"] = encode(texture(18, (2000, 70)), "PNG")
    return c


# names that decode under the builder's bounds (the others are rejects); sizes are 160 x 120
GOOD = {"good.png", "good.jpg", "good.tif", "good.bmp", "good.webp", "cmyk.jpg", "gray16.png", "gray16.tif",
        "float.tif", "palette_alpha.png", "rgba.png", "la.png", "bilevel.bmp", "flat_gray16.tif",
        "tiff_rgb48.tif", "tiff_lab.tif", "tiff_signed16.tif", "png_rgb48.png",
        "exif_orientation_99.jpg", "exif_orientation_6.png", "exif_orientation_text.jpg", "exif_garbage.jpg"}
# reason (or set of reasons) the gate gives the others under Bounds()
EXPECT = {
    "empty.png": "empty_file", "text.png": "not_an_image", "html.jpg": "not_an_image",
    "still.gif": "unsupported_format", "icon.ico": "unsupported_format",
    "bomb_png_100k.png": "too_many_pixels", "huge_png_60mpx.png": "too_many_pixels",
    "bomb_bmp.bmp": "too_many_pixels", "huge_tiff.tif": "too_many_pixels",
    "multi_page.tif": "multi_frame", "animated.png": "multi_frame", "animated.webp": "multi_frame",
    "animated.gif": "multi_frame", "tiny.png": "too_small", "sliver.png": "extreme_aspect_ratio",
}


def expected(name: str) -> set[str]:
    """The reasons the gate may give `name` (empty: it decodes)."""
    if name in GOOD:
        return set()
    want = EXPECT.get(name)
    return {want} if want else set(BROKEN)


def mutations(n: int, seed: int = 17) -> list[tuple[str, bytes]]:
    """n seeded mutations of small good images of every allowed format: bit flips, byte runs,
    cuts and splices, most of them in the first 64 bytes (the header)."""
    rng = random.Random(seed)
    bases = {"png": encode(texture(20, (96, 80)), "PNG"), "jpg": encode(texture(21, (96, 80)), "JPEG"),
             "tif": encode(texture(22, (96, 80)), "TIFF"), "bmp": encode(texture(23, (96, 80)), "BMP"),
             "webp": encode(texture(24, (96, 80)), "WEBP")}
    out = []
    for k in range(n):
        ext = list(bases)[k % len(bases)]
        b = bytearray(bases[ext])
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(min(64, len(b))) if rng.random() < 0.7 else rng.randrange(len(b))
            if op < 0.4:
                b[pos] ^= 1 << rng.randrange(8)
            elif op < 0.6:
                b[pos:pos + 4] = bytes(rng.choice((0, 0xFF, 0x7F, 0x80)) for _ in range(4))
            elif op < 0.8:
                del b[rng.randrange(len(b) // 2, len(b)):]
            else:
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        out.append((f"mut{k:03d}.{ext}", bytes(b)))
    return out


# Entries that are not plain image files, by what each stage makes of them (None: read as an image)
SPECIAL = ("fifo.png", "folder.png", "loop.png", "dangling.png", "outside.png", "inside_link.png")


def write_corpus(folder) -> dict[str, Path]:
    """Every CORPUS file under `folder`, plus SPECIAL entries: a FIFO, a folder named .png, a symlink
    loop, a dangling symlink, a symlink to a good image outside `folder`, one to a good image in
    folder/sub/ (not itself listed). name -> path."""
    folder = Path(folder)
    (folder / "sub").mkdir(parents=True)
    out = {}
    for name, data in corpus().items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    os.mkfifo(folder / "fifo.png")
    (folder / "folder.png").mkdir()
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    outside = folder.parent / f"{folder.name}-outside" / "x.png"
    outside.parent.mkdir()
    outside.write_bytes(encode(texture(41), "PNG"))
    (folder / "outside.png").symlink_to(outside)
    (folder / "sub" / "target.png").write_bytes(encode(texture(42), "PNG"))
    (folder / "inside_link.png").symlink_to(folder / "sub" / "target.png")
    out.update({name: folder / name for name in SPECIAL})
    return out

"""Builder throughput against a like-for-like bare PIL loop, on real-size images (issue 22).

    .venv/bin/python benchmarks/perf/build_throughput.py [--n 24] [--sizes 1024x768,2048x1536]
                     [--formats png,tiff] [--workers 2] [--repeat 2] [--demo 0]

For each size and format: --n synthetic SEM fields of that size with a data bar (fracdata.synth:
textures + overlays; rendered once, saved as PNG or TIFF), built without gold by `fracdata build`
(read, decode, normalise, pixel id, 8 phashes on the specimen, overlay masks and keypoints for the
split's region check, 4 PNGs per image: the original and its rotations 90/180/270, JSON, card), and a
bare single-process loop doing the same decodes and encodes (decode + the same 4 orientations +
PNG encode with the builder's settings, fracdata.images.PNG_SAVE), interleaved, best of --repeat.
Prints images/s of both, builder/bare (goal >= 0.8 on 2 cores), CPU seconds of both, the load
average, and where the builder's CPU goes per image (profiled in-process on 4 of the images): its
own share of the work the bare loop does not do, the gold guard's part (masks + keypoints + probes,
done for the split's region check even without gold) named.
`--demo N` also times the builder on N demo-size synthetic images (fracdata synth) the same way.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare_loop(paths: list[Path]) -> float:
    from PIL import Image

    from fracdata.images import PNG_SAVE

    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
            for op in (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270):
                im2 = im if op is None else im.transpose(op)
                im2.save(io.BytesIO(), **PNG_SAVE)
    return time.perf_counter() - t0


KINDS = ("dimple_equiaxed", "ig_facet", "gas_pore", "striation_ductile", "fish_eye")  # cleavage's rivers take ~15 s at 2 Mpx


def render(n: int, size: tuple[int, int]) -> list:
    """n distinct synthetic SEM fields of size (w, h), each with a data bar below its specimen."""
    from fracdata.synth import overlays, pairs

    w, h = size
    out = []
    for k in range(n):
        scope = overlays.microscopes(0)[k % 8]
        bar = overlays.data_bar(scope, 1000, w).shape[0]
        out.append(overlays.with_bar(pairs.specimen(300 + k, h - bar, w, KINDS[k % len(KINDS)]), scope, 1000)[0])
    return out


def fields(folder: Path, arrays: list, fmt: str) -> list[Path]:
    """The fields as PNG or TIFF files, with a manifest and labels."""
    from PIL import Image

    from fracdata.images import image_id

    folder.mkdir(parents=True)
    recs, labels, paths = [], [], []
    for k, a in enumerate(arrays):
        p = folder / f"f{k}.{'tif' if fmt == 'tiff' else 'png'}"
        Image.fromarray(a).save(p, format=fmt.upper())
        i = image_id(p)
        recs.append({"id": i, "image": p.name, "source": {"doi": f"10.1/real-{k}", "licence": "CC0-1.0"}})
        labels.append({"id": i, "features": ["dimple_equiaxed"], "labeler": {"kind": "gpt"}})
        paths.append(p)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    return paths


def race(src: Path, paths: list[Path], out: Path, workers: int, repeat: int, gold: list[Path] | None = None) -> dict:
    from fracdata.dataset.config import BuildConfig, Inputs
    from fracdata.dataset.pipeline import build

    bare_loop(paths[:2])  # warm the page cache and PIL's plugins for both contenders
    inputs = Inputs(src / "manifest.jsonl", [src / "labels.jsonl"], None, gold or [])
    bare, built, cpu_bare, cpu_built = [], [], [], []
    for _ in range(repeat):  # interleaved, best of N: a shared machine's noise hits both alike
        c0 = cpu_seconds()
        bare.append(bare_loop(paths))
        c1 = cpu_seconds()
        t0 = time.perf_counter()
        build(inputs, out, BuildConfig(), workers=workers, force=True, log=lambda s: None)
        built.append(time.perf_counter() - t0)
        cpu_bare.append(c1 - c0)
        cpu_built.append(cpu_seconds() - c1)
    return {"bare": min(bare), "built": min(built), "cpu_bare": min(cpu_bare), "cpu_built": min(cpu_built),
            "runs_bare": bare, "runs_built": built}


def profile(paths: list[Path]) -> dict[str, float]:
    """CPU ms per image of each part of the builder's per-image work, in this process."""
    import numpy as np
    from PIL import Image

    from fracdata.dataset import lookup, masks, overlap
    from fracdata.dataset.decode import DIHEDRAL, ROTATIONS, dihedral_hashes
    from fracdata.images import encode_png, open_image, pixel_id

    parts: dict[str, float] = {}

    def tick(name, t0):
        t1 = time.process_time()
        parts[name] = parts.get(name, 0.0) + (t1 - t0) * 1e3 / len(paths)
        return t1

    dihedral_hashes(Image.new("L", (64, 64)))  # scipy's import is not per image
    for p in paths:
        t = time.process_time()
        im = open_image(p)
        t = tick("decode + normalise", t)
        pixel_id(im)
        t = tick("pixel id", t)
        for a in (None, *ROTATIONS.values()):
            x = im if a is None else im.transpose(DIHEDRAL[a])
            pixel_id(x) if a else None
            encode_png(x)
        t = tick("4 PNG encodes (+ ids of the rotations)", t)
        gray = np.asarray(im.convert("L"))
        mask, box = masks.overlay_mask(gray)
        t = tick("guard: overlay masks (bars, lettering)", t)
        dihedral_hashes(im.crop(box))
        t = tick("8 phashes of the specimen", t)
        kp = overlap.keypoints(im, overlap.N_TRAIN, (mask, box))
        t = tick("guard: keypoints (fill, thumb, ORB)", t)
        lookup.probe_set(kp)
        tick("guard: probes", t)
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--sizes", default="1024x768,2048x1536")
    ap.add_argument("--formats", default="png,tiff")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--demo", type=int, default=0, help="also race N demo-size synthetic images (0: skip)")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
          f"builder workers {args.workers}, bare loop 1 process, best of {args.repeat}, no gold")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            arrays = render(args.n, (w, h))
            for fmt in args.formats.split(","):
                src = Path(tmp) / f"{size}-{fmt}"
                paths = fields(src, arrays, fmt)
                r = race(src, paths, Path(tmp) / f"out-{size}-{fmt}", args.workers, args.repeat)
                n = len(paths)
                print(f"{size} {fmt.upper():4s} x{n}: builder {n / r['built']:5.2f} images/s ({r['cpu_built']:.1f} CPU-s), "
                      f"bare {n / r['bare']:5.2f} images/s ({r['cpu_bare']:.1f} CPU-s); builder/bare {r['bare'] / r['built']:.2f} "
                      f"(CPU {r['cpu_bare'] / r['cpu_built']:.2f}); runs builder {', '.join(f'{t:.1f}' for t in r['runs_built'])} s, "
                      f"bare {', '.join(f'{t:.1f}' for t in r['runs_bare'])} s")
                if fmt == args.formats.split(",")[0]:
                    parts = profile(paths[:4])
                    total = sum(parts.values())
                    guard = sum(v for k, v in parts.items() if k.startswith("guard"))
                    print(f"  per image, CPU ms (in-process, 4 images): {total:.0f} in all; guard {guard:.0f} "
                          f"({guard / total:.0%}): " + "; ".join(f"{k} {v:.0f}" for k, v in parts.items()))
        if args.demo:
            from fracdata.synth.corpus import generate

            src = Path(tmp) / "demo"
            generate(src, seed=0, n=args.demo, n_gold=0, n_manual=0)
            paths = sorted((src / "images").glob("*.*"))
            r = race(src, paths, Path(tmp) / "out-demo", args.workers, args.repeat)
            print(f"demo size (96-128 px) x{len(paths)}: builder {len(paths) / r['built']:.0f} images/s "
                  f"({r['cpu_built']:.1f} CPU-s), bare {len(paths) / r['bare']:.0f} images/s ({r['cpu_bare']:.1f} CPU-s); "
                  f"builder/bare {r['bare'] / r['built']:.2f}")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

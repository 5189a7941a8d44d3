"""Peak memory of `fracdata mine` on PDFs of 49-Mpx figures: 1 page against 12 (issue 24).

    .venv/bin/python benchmarks/perf/mine_memory.py [--side 7000] [--pages 12] [--keep DIR]

Three generated PDFs (reportlab, Flate-compressed 8-bit gray, a captioned figure per page, CC BY):
  one      1 page, one 7000 x 7000 (49 Mpx) image
  same     12 pages drawing that one image (one XObject, 12 figures: 11 end as duplicate_image)
  distinct 12 pages, 12 different 49-Mpx images
Each is mined in a fresh process; its peak RSS (ru_maxrss from os.wait4) is printed with the
wall time, the ratio to `one`, and the load average. The goal: 12 pages within 1.2x of 1 page
(the miner decodes one image at a time and drops pypdf's cache of it: fracdata/mine/pdf_images.py).
Before that change the issue measured 342 MB (1 page), 905 MB (12 x the same image), 1,028 MB
(8 distinct images).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
LICENCE = "Open access under the CC BY license (https://creativecommons.org/licenses/by/4.0/)."


def big_texture(seed: int, side: int) -> Image.Image:
    """side x side 8-bit gray of 8 px blocks of seeded noise (uint8 throughout: 49 MB, not 400)."""
    small = np.random.default_rng(seed).integers(30, 220, (side // 8 + 1, side // 8 + 1), dtype=np.uint8)
    return Image.fromarray(np.ascontiguousarray(small.repeat(8, 0).repeat(8, 1)[:side, :side]))


def write(path: Path, images: list[Image.Image]) -> Path:
    """One page per image: licence line, the image 300 pt wide, its caption below."""
    from reportlab import rl_config
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    a85, rl_config.useA85 = rl_config.useA85, 0  # Flate only, as publishers write images
    try:
        c = canvas.Canvas(str(path), pagesize=(595, 842), invariant=1)
        readers = {}
        for k, im in enumerate(images, 1):
            c.setFont("Helvetica", 9)
            c.drawString(60, 800, LICENCE)
            reader = readers.setdefault(id(im), ImageReader(im))  # the same image: one XObject
            c.drawImage(reader, 60, 460, width=300, height=300)
            c.drawString(60, 440, f"Fig. {k}. SEM fractograph of the fatigue fracture surface showing striations.")
            c.drawString(60, 400, f"As Fig. {k} shows, the fracture surface holds fatigue striations.")
            c.showPage()
        c.save()
    finally:
        rl_config.useA85 = a85
    return path


def mine_peak(pdf: Path, out: Path, code: Path = ROOT) -> tuple[float, float, int, str]:
    """(peak RSS in MB, wall s, exit status, the images line) of `fracdata mine pdf --out out`,
    with the fracdata of checkout `code`."""
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    # cwd: `python -m` puts the working directory first on the path, ahead of PYTHONPATH
    proc = subprocess.Popen([sys.executable, "-m", "fracdata", "mine", str(pdf), "--out", str(out)], env=env, cwd=code,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    kept = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("images ")), text[-300:])
    return usage.ru_maxrss / 1024, wall, proc.returncode, kept  # ru_maxrss is in KB on Linux


def generate(work: Path, side: int, pages: int) -> dict[str, Path]:
    base = big_texture(0, side)
    pdfs = {"one": write(work / "one.pdf", [base]), "same": write(work / "same.pdf", [base] * pages)}
    del base
    pdfs["distinct"] = write(work / "distinct.pdf", [big_texture(k, side) for k in range(pages)])
    return pdfs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, default=7000, help="image side in px (default 7000: 49 Mpx)")
    p.add_argument("--pages", type=int, default=12)
    p.add_argument("--keep", type=Path, help="keep the PDFs and outputs here (and reuse PDFs already there)")
    p.add_argument("--code", type=lambda v: Path(v).resolve(), default=ROOT, help="the checkout whose fracdata mines (default this one; "
                                                          "another, e.g. main before the change, for a baseline)")
    p.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)  # the child that writes the PDFs
    args = p.parse_args()
    if args.generate_into:
        generate(args.generate_into, args.side, args.pages)
        return 0
    with tempfile.TemporaryDirectory() as d:
        work = (args.keep or Path(d)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        # The PDFs are written by a child process: a fork of this process is what each measured
        # child starts as, and ru_maxrss counts that copy too, so this process stays small.
        pdfs = {name: work / f"{name}.pdf" for name in ("one", "same", "distinct")}
        if not all(p.is_file() for p in pdfs.values()):
            subprocess.run([sys.executable, __file__, "--generate-into", str(work), "--side", str(args.side),
                            "--pages", str(args.pages)], check=True)
        sizes = ", ".join(f"{k} {v.stat().st_size / 1e6:.1f} MB" for k, v in pdfs.items())
        print(f"fracdata from {args.code}")
        print(f"generated {len(pdfs)} PDFs of {args.side}x{args.side} gray images in {time.perf_counter() - t0:.0f} s ({sizes})")
        results = {}
        for name, pdf in pdfs.items():
            load = os.getloadavg()[0]
            shutil.rmtree(work / f"out-{name}", ignore_errors=True)  # a fresh OUT: nothing reused from a last run
            peak, wall, rc, kept = mine_peak(pdf, work / f"out-{name}", args.code)
            results[name] = peak
            pages = 1 if name == "one" else args.pages
            print(f"{name:9s} {pages:2d} pages: peak RSS {peak:7.0f} MB, {wall:6.1f} s, exit {rc}, load {load:.1f}; {kept}")
        ok = True
        for name in ("same", "distinct"):
            ratio = results[name] / results["one"]
            ok &= ratio <= 1.2
            print(f"{name}: {args.pages} pages / 1 page = {ratio:.2f}x (goal <= 1.20)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory of `fracdata serve` under concurrent large-pixel uploads, against its stated ceiling.

    .venv/bin/python benchmarks/perf/serve_memory.py [--uploads 4] [--side 7000] [--budget-mb 1000]
        [--baseline-checkout /work/main]      # also run another checkout's serve, unbounded
    .venv/bin/python benchmarks/perf/serve_memory.py --modes   # bytes per pixel per mode (images.WORK_PER_PIXEL)

A real `fracdata serve` (subprocess; specialist: the local OpenAI stub in its own process,
`--generalist none`) gets `uploads` concurrent side x side RGB PNGs (smooth, so each is small on
disk: ~0.7 MB for 49 Mpx; issue 17 used 580 kB). Its peak RSS is the kernel's high-water mark
(/proc/PID/status VmHWM), reset after a warm-up request (clear_refs 5), so nothing is sampled.

The ceiling it must stay under: idle RSS + max(--decode-memory-mb, the largest single image's
estimate, Header.work_bytes) + one specialist request (an endpoint specialist is sent the full
image as a PNG data URL: allowed as 4 x the upload's PNG size, for the PNG, its base64 and the
JSON body) + 64 MB for the requests' own buffers and Python's allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
MB = 1e6
SLACK = 64 * MB


def smooth_png(path: Path, side: int, seed: int) -> None:
    """side x side RGB: a 3 x 3 seeded field, upscaled bilinearly (smooth: 7000 px -> ~0.7 MB of PNG)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (3, 3, 3), dtype=np.uint8), "RGB")
    small.resize((side, side), Image.Resampling.BILINEAR).save(path, compress_level=6)


def status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def post(url: str, path: Path) -> int:
    boundary = "fracdataBench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "analyze", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def serve_once(checkout: Path, entry: Path, out: Path, images: list[Path], warm: Path, extra: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{checkout}{os.pathsep}{checkout / 'benchmarks'}", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "fracdata", "serve", "--port", "0", "--specialist", str(entry), "--generalist", "none",
           "--out", str(out), "--max-upload-mb", "64", *extra]
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("serving "):
                url = line.split()[1]
                break
        else:
            raise SystemExit(f"fracdata serve exited {proc.wait()} without serving")
        assert post(url, warm) == 200, "warm-up request failed"
        idle = status(proc.pid, "VmRSS")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
        codes: list[int] = []
        t0 = time.perf_counter()
        threads = [threading.Thread(target=lambda p=p: codes.append(post(url, p))) for p in images]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        return {"idle": idle, "peak": status(proc.pid, "VmHWM"), "codes": sorted(codes), "wall_s": wall}
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()


def measure_modes(side: int = 4000) -> None:
    """Peak bytes per pixel of open_image per mode, each in a fresh process (ru_maxrss over the RSS
    before decoding), beside Header.work_bytes' estimate."""
    code = r"""
import os, resource, sys
from fracdata.images import inspect, open_image
def rss(): return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
f = sys.argv[1]; h = inspect(f); px = h.size[0] * h.size[1]
before = rss(); im = open_image(f)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"{h.mode:5s} -> {im.mode:3s}  measured {(peak - before) / px:5.1f} B/px  estimate {h.work_bytes / px:4.0f} B/px")
"""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    a = np.kron(rng.integers(0, 256, (side // 16, side // 16, 4), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
    with tempfile.TemporaryDirectory() as d:
        files = {"l.png": Image.fromarray(a[..., 0].copy()), "rgb.png": Image.fromarray(a[..., :3].copy()),
                 "rgba.png": Image.fromarray(a.copy(), "RGBA"), "g16.tif": Image.fromarray(a[..., 0].astype(np.uint16) * 200),
                 "cmyk.jpg": Image.fromarray(a.copy(), "RGBA").convert("CMYK"),
                 "p.png": Image.fromarray(a[..., :3].copy()).convert("P")}
        for name, im in files.items():
            im.save(Path(d) / name)
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            out = subprocess.run([sys.executable, "-c", code, str(Path(d) / name)], env=env, capture_output=True, text=True)
            print(f"{name:9s} {out.stdout.strip() or out.stderr.strip()[-300:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uploads", type=int, default=4)
    p.add_argument("--side", type=int, default=7000, help="px: 7000 x 7000 = 49 Mpx")
    p.add_argument("--budget-mb", type=float, default=1000.0, help="serve --decode-memory-mb")
    p.add_argument("--baseline-checkout", type=Path, help="also run this checkout's serve (no budget flag)")
    p.add_argument("--modes", action="store_true", help="only measure bytes per pixel per mode")
    args = p.parse_args()
    if args.modes:
        return measure_modes()
    from fracdata.images import inspect

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        images = [d / f"big{i}.png" for i in range(args.uploads)]
        for i, path in enumerate(images):
            smooth_png(path, args.side, i)
        smooth_png(d / "warm.png", 256, 99)
        stub = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", "--port", "0"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            base = stub.stdout.readline().strip()
            entry = d / "spec.yaml"
            entry.write_text(f"name: spec\nkind: openai-compatible\nbase_url: {base}\nmodel: tiny-ft\nprompt: training\n"
                             "max_retries: 0\ntimeout_s: 600\ndecoding: {max_tokens: 16, temperature: 0}\n")
            work = max(inspect(p).work_bytes for p in images)
            png = max(p.stat().st_size for p in images)
            print(f"{args.uploads} concurrent uploads of {args.side}x{args.side} RGB PNGs "
                  f"({png / MB:.2f} MB each at most; estimate {work / MB:.0f} MB of decode work each); "
                  f"load average {os.getloadavg()[0]:.2f}")
            runs = {"bounded": (ROOT, ["--decode-memory-mb", f"{args.budget_mb:g}"]),
                    "unbounded": (ROOT, ["--decode-memory-mb", "1000000"])}
            if args.baseline_checkout:
                runs["baseline"] = (args.baseline_checkout.resolve(), [])
            results = {}
            for name, (checkout, extra) in runs.items():
                r = serve_once(checkout, entry, d / f"out-{name}", images, d / "warm.png", extra)
                results[name] = r
                budget = args.budget_mb * MB if name == "bounded" else None
                line = (f"{name:9s} ({checkout}{' ' + ' '.join(extra) if extra else ''}): idle {r['idle'] / MB:.0f} MB, "
                        f"peak {r['peak'] / MB:.0f} MB (+{(r['peak'] - r['idle']) / MB:.0f} MB), statuses {r['codes']}, "
                        f"{r['wall_s']:.1f} s")
                if budget is not None:
                    ceiling = r["idle"] + max(budget, work) + 4 * png + SLACK
                    line += (f"; ceiling idle + max(budget {budget / MB:.0f}, largest {work / MB:.0f}) + specialist "
                             f"{4 * png / MB:.0f} + {SLACK / MB:.0f} = {ceiling / MB:.0f} MB: "
                             + ("below" if r["peak"] < ceiling else "ABOVE"))
                print(line, flush=True)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            if "unbounded" in results:
                b, u = results["bounded"], results["unbounded"]
                print(f"bounded / unbounded growth over idle: {(b['peak'] - b['idle']) / max(1, u['peak'] - u['idle']):.2f}")
            if "baseline" in results:
                b, base = results["bounded"], results["baseline"]
                print(f"bounded / baseline peak: {b['peak'] / base['peak']:.2f}; growth over idle: "
                      f"{(b['peak'] - b['idle']) / max(1, base['peak'] - base['idle']):.2f}")
        finally:
            stub.terminate()
            stub.wait(10)
            stub.stdout.close()
    print(json.dumps({k: {kk: v[kk] for kk in ("idle", "peak", "wall_s")} for k, v in results.items()}))


if __name__ == "__main__":
    main()

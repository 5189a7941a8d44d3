"""`fracdata label` throughput against the local OpenAI stub: is the client the bottleneck?

    .venv/bin/python benchmarks/perf/label_throughput.py [--images 400] [--latency 0.2] [--concurrency 16]

With every answer taking `latency` seconds, `concurrency` requests in flight can do at most
concurrency / latency images per second (16 / 0.2 s = 80/s). The goal is >= 0.9 of that bound.
The stub runs in its own process, as a real server would: in this process it would compete
with the client for the GIL. A second run over the same manifest must make 0 requests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fracdata.cli import main  # noqa: E402
from tests.support.label_kit import make_manifest  # noqa: E402


def label(manifest: Path, out: Path, concurrency: int) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["label", "--manifest", str(manifest), "--out", str(out), "--concurrency", str(concurrency)])
    assert rc == 0, f"fracdata label exited {rc}"
    return time.perf_counter() - t0


def bench(images: int, latency: float, concurrency: int) -> None:
    server = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", "--port", "0",
                               "--latency", str(latency)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()

        def stats() -> dict:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/stub/stats") as r:
                return json.load(r)

        os.environ.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=url)
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up on one image: imports (openai ~1 s) and schema building are start-up, not throughput.
            warm, _ = make_manifest(Path(tmp) / "warm", 1)
            print(f"start-up (first command in this process, 1 image): {label(warm, Path(tmp) / 'w.jsonl', 1):.2f} s")
            manifest, _ = make_manifest(Path(tmp) / "m", images)
            out = Path(tmp) / "labels.jsonl"
            before = stats()["completions"]
            secs = label(manifest, out, concurrency)
            assert stats()["completions"] - before == images
            rate, bound = images / secs, concurrency / latency
            print(f"first run: {images} images in {secs:.2f} s = {rate:.1f} images/s "
                  f"(bound {concurrency} / {latency} s = {bound:.0f}/s; ratio {rate / bound:.2f}, goal >= 0.90)")
            before = stats()["requests"]
            secs = label(manifest, out, concurrency)
            print(f"second run: {stats()['requests'] - before} requests, {secs:.2f} s (all {images} from the cache)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    bench(a.images, a.latency, a.concurrency)

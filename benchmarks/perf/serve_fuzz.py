"""Fuzz a real `fracdata serve` with seeded mutations of good images: never a 5xx (issue 17).

    .venv/bin/python benchmarks/perf/serve_fuzz.py [--count 2000] [--seed 17] [--clients 2]

The mutations are tests/support/hostile_images.py `mutations` (bit flips, byte runs, cuts and
splices of a PNG, JPEG, TIFF, BMP and WebP, most of them in the header); the test suite posts 300
of them through the app in-process (tests/test_hostile_images.py), this script posts as many as
asked to the CLI's own server over HTTP (the specialist: the local OpenAI stub in this process,
`--generalist none`). It prints the statuses with their counts and the reasons of the rejects,
the rate, and the load average; it exits 1 if any answer was a 5xx or the server died.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def post(url: str, name: str, data: bytes) -> tuple[int, str]:
    boundary = "fracdataFuzz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "analyze", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, "analysed"
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        reason = detail.split(": ")[1] if detail.count(": ") >= 1 else detail[:60]  # "name: reason: detail"
        return e.code, reason.strip('"}')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--clients", type=int, default=2, help="concurrent clients")
    args = p.parse_args()
    from tests.support.analyze_kit import spec_responder
    from tests.support.hostile_images import mutations
    from tests.support.openai_server import OpenAIStub

    cases = mutations(args.count, seed=args.seed)
    with tempfile.TemporaryDirectory() as d, OpenAIStub(responder=spec_responder) as stub:
        entry = Path(d) / "spec.yaml"
        entry.write_text(f"name: spec\nkind: openai-compatible\nbase_url: {stub.base_url}\nmodel: tiny-ft\n"
                         "prompt: training\nmax_retries: 0\ntimeout_s: 60\ndecoding: {max_tokens: 16, temperature: 0}\n")
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}", HF_HUB_OFFLINE="1")
        proc = subprocess.Popen([sys.executable, "-m", "fracdata", "serve", "--port", "0", "--specialist", str(entry),
                                 "--generalist", "none", "--out", str(Path(d) / "out")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = next((line.split()[1] for line in proc.stdout if line.startswith("serving ")), None)
            if url is None:
                print(f"fracdata serve exited {proc.wait()} without serving")
                return 1
            statuses, reasons, lock = collections.Counter(), collections.Counter(), threading.Lock()
            todo = iter(cases)

            def client():
                for name, data in todo:  # one shared iterator: each case is posted once
                    code, reason = post(url, name, data)
                    with lock:
                        statuses[code] += 1
                        reasons[f"{code} {reason}"] += 1

            load0, t0 = os.getloadavg()[0], time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(30)
            proc.stdout.close()
    print(f"{args.count} mutations (seed {args.seed}), {args.clients} clients: {wall:.1f} s, "
          f"{args.count / wall:.0f} requests/s; load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    print("statuses: " + ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items())))
    for k, v in reasons.most_common():
        print(f"  {v:5d}  {k}")
    bad = sum(v for k, v in statuses.items() if k >= 500)
    print(f"5xx: {bad}; server {'alive' if alive else 'DIED'}")
    return 1 if bad or not alive else 0


if __name__ == "__main__":
    raise SystemExit(main())

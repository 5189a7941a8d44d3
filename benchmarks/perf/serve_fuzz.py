"""Fuzz a real `fracdata serve` with seeded mutations of good images: never a 5xx (issue 17);
and load it: every request it accepts gets an HTTP answer (issue 24).

    .venv/bin/python benchmarks/perf/serve_fuzz.py [--count 2000] [--seed 17] [--clients 2]
    .venv/bin/python benchmarks/perf/serve_fuzz.py --load 1000 --in-flight 100 --rounds 3 [--max-queue 64]

--load N posts N small good images with --in-flight clients at once, --rounds times against one
server, and counts the answers by status ("no answer" counts a connection reset, a timeout or a
closed socket, by kind). The server answers what it cannot queue with 503 and a Retry-After
(fracdata serve --max-queue), and logs each refusal; the script exits 1 unless every request of
every round got an HTTP answer.

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
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
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


def post_load(url: str, data: bytes) -> str:
    """One small upload; its status as text, or `no answer: <kind>`."""
    try:
        code, _ = post(url, "load.png", data)
        return str(code)
    except (OSError, http.client.HTTPException) as e:  # reset, refused, timeout, closed without a response
        return f"no answer: {type(e).__name__}"


class KeepAlive(threading.local):
    """One persistent HTTP/1.1 connection per client thread, as requests.Session keeps one: a
    request on a connection the server has just closed is what a pooled client meets."""

    def post(self, url: str, data: bytes) -> str:
        u = urllib.parse.urlsplit(url)
        boundary = "fracdataLoad"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"load.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        try:
            if getattr(self, "conn", None) is None:
                self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            self.conn.request("POST", "/analyze", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            resp = self.conn.getresponse()
            resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return str(resp.status)
        except (OSError, http.client.HTTPException) as e:
            self.conn = None
            return f"no answer: {type(e).__name__}"


def load(url: str, n: int, in_flight: int, rounds: int, keep_alive: bool = False) -> bool:
    """`rounds` rounds of n requests, in_flight at once; prints the answers by status per round."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.hostile_images import encode, texture

    data = encode(texture(5, (96, 80)), "PNG")
    pooled = KeepAlive()
    send = (lambda _: pooled.post(url, data)) if keep_alive else (lambda _: post_load(url, data))
    every = True
    for r in range(1, rounds + 1):
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        with ThreadPoolExecutor(in_flight) as ex:
            got = collections.Counter(ex.map(send, range(n)))
        wall = time.perf_counter() - t0
        answered = sum(v for k, v in got.items() if not k.startswith("no answer"))
        every &= answered == n
        print(f"round {r}: {n} requests, {in_flight} in flight: {answered}/{n} answered in {wall:.1f} s "
              f"({n / wall:.0f}/s; load {load0:.1f}): " + ", ".join(f"{k} x{v}" for k, v in sorted(got.items())))
    return every


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--clients", type=int, default=2, help="concurrent clients")
    p.add_argument("--load", type=int, metavar="N", help="instead of fuzzing: N good requests per round")
    p.add_argument("--in-flight", type=int, default=100, help="--load: requests in flight at once (default 100)")
    p.add_argument("--rounds", type=int, default=3, help="--load: rounds against one server (default 3)")
    p.add_argument("--max-queue", type=int, help="--load: fracdata serve --max-queue (default: serve's)")
    p.add_argument("--keep-alive", action="store_true", help="--load: each client keeps its connection open "
                                                              "(a pooled client); default: a new connection per request")
    p.add_argument("--code", type=lambda v: Path(v).resolve(), default=ROOT, help="the checkout whose fracdata serves (default this one; "
                                                          "another, e.g. main before a change, for a baseline)")
    args = p.parse_args()
    from tests.support.analyze_kit import spec_responder
    from tests.support.hostile_images import mutations
    from tests.support.openai_server import OpenAIStub

    cases = mutations(args.count, seed=args.seed) if args.load is None else []
    with tempfile.TemporaryDirectory() as d, OpenAIStub(responder=spec_responder) as stub:
        entry = Path(d) / "spec.yaml"
        entry.write_text(f"name: spec\nkind: openai-compatible\nbase_url: {stub.base_url}\nmodel: tiny-ft\n"
                         "prompt: training\nmax_retries: 0\ntimeout_s: 60\ndecoding: {max_tokens: 16, temperature: 0}\n")
        env = dict(os.environ, PYTHONPATH=f"{args.code}{os.pathsep}{args.code / 'benchmarks'}", HF_HUB_OFFLINE="1")
        queue = ["--max-queue", str(args.max_queue)] if args.max_queue else []
        log = open(Path(d) / "serve.log", "w+")
        proc = subprocess.Popen([sys.executable, "-m", "fracdata", "serve", "--port", "0", "--specialist", str(entry),
                                 "--generalist", "none", "--out", str(Path(d) / "out"), *queue], cwd=args.code, env=env,
                                stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            url = next((line.split()[1] for line in proc.stdout if line.startswith("serving ")), None)
            if url is None:
                print(f"fracdata serve exited {proc.wait()} without serving")
                return 1
            if args.load is not None:
                every = load(url, args.load, args.in_flight, args.rounds, args.keep_alive)
                alive = proc.poll() is None
                log.flush()
                log.seek(0)
                refused = [ln for ln in log.read().splitlines() if ln.startswith("serve: refused")]
                print(f"server {'alive' if alive else 'DIED'}; it logged {len(refused)} refusals"
                      + (f", e.g. {refused[0]}" if refused else ""))
                return 0 if every and alive else 1
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

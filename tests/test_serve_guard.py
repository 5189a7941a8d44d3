"""`fracdata serve` against hostile clients (issue 17), on a real uvicorn with the guard: the token
is checked from the headers before the body is read, clients that stall or trickle are cut off,
and image decoding holds to its memory budget whatever the number of concurrent uploads."""

from __future__ import annotations

import argparse
import io
import os
import socket
import threading
import time

import pytest
from PIL import Image

from fracdata.analyze.pipeline import MemoryBudget
from fracdata.images import Bounds, Header, ImageReject, inspect
from tests.support.analyze_kit import spec_entry, spec_responder
from tests.support.hostile_images import encode, png_header_only, texture
from tests.support.openai_server import OpenAIStub

TOKEN = "guard-test-token-9"
READ_TIMEOUT = 1.0
LIMIT = 200_000  # bytes: the body deadline is 1 s + 200 kB / 100 kB/s = 3 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(host, port, analyzer): the app behind uvicorn with serve's own protocol and settings."""
    import uvicorn

    from fracdata.analyze.options import build_analyzer
    from fracdata.serve import add_arguments
    from fracdata.serve.app import create_app
    from fracdata.serve.guard import guarded_protocol

    tmp = tmp_path_factory.mktemp("guard")
    with OpenAIStub(responder=spec_responder, latency=0.3) as stub:
        p = argparse.ArgumentParser()
        add_arguments(p)
        analyzer = build_analyzer(p.parse_args(["--specialist", spec_entry(tmp, stub.base_url), "--generalist", "none"]),
                                  log=lambda m: None)
        os.environ["FRACDATA_TEST_GUARD_TOKEN"] = TOKEN
        app = create_app(analyzer, LIMIT, "FRACDATA_TEST_GUARD_TOKEN", None, READ_TIMEOUT)
        os.environ.pop("FRACDATA_TEST_GUARD_TOKEN")
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical",
                                http=guarded_protocol(READ_TIMEOUT), timeout_keep_alive=5)
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        while not srv.started:
            time.sleep(0.01)
        port = srv.servers[0].sockets[0].getsockname()[1]
        yield "127.0.0.1", port, analyzer
        srv.should_exit = True
        thread.join(10)


def head(length: int, token: str | None = TOKEN, boundary: str = "b0") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST /analyze HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def part(data: bytes, boundary: str = "b0") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def answer(sock: socket.socket, timeout: float = 15) -> tuple[float, bytes]:
    """(seconds until the server answered or closed, what it sent)."""
    sock.settimeout(timeout)
    t0, got = time.monotonic(), b""
    while True:
        chunk = sock.recv(65536)
        got += chunk
        if not chunk or b"\r\n\r\n" in got and b'"}' in got:
            return time.monotonic() - t0, got


def test_a_wrong_token_is_401_before_the_body_is_sent(server):
    host, port, _ = server
    for token, detail in ((None, b"missing bearer token"), ("nope", b"wrong bearer token")):
        with socket.create_connection((host, port)) as s:
            s.sendall(head(150_000, token))  # and not one byte of the 150 kB it announces
            took, got = answer(s)
        assert got.startswith(b"HTTP/1.1 401 ") and detail in got and took < READ_TIMEOUT, (took, got[:200])


def test_a_body_that_stalls_is_408_and_one_that_trickles_misses_its_deadline(server):
    host, port, _ = server
    body = part(encode(texture(1), "PNG"))
    with socket.create_connection((host, port)) as s:
        s.sendall(head(len(body)) + body[:100])  # then nothing
        took, got = answer(s)
    assert got.startswith(b"HTTP/1.1 408 ") and b"sent nothing for 1 s" in got and READ_TIMEOUT <= took < 5, (took, got)
    with socket.create_connection((host, port)) as s:  # 50 bytes every 0.5 s: never still for 1 s, 100 B/s
        s.sendall(head(len(body)))
        t0, got = time.monotonic(), b""
        s.settimeout(0.5)
        for k in range(0, len(body), 50):
            try:
                s.sendall(body[k:k + 50])
                got += s.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            if got:
                break
        took = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408 ") and b"did not send the body within 3 s" in got and took < 6, (took, got)


def test_headers_that_trickle_are_cut_off(server):
    host, port, _ = server
    # the clock starts before the connection: the server's timer cannot start earlier than that, so
    # took >= READ_TIMEOUT holds exactly (started after connect, it once read 0.9967 s under load)
    t0, closed = time.monotonic(), False
    with socket.create_connection((host, port)) as s:
        s.settimeout(0.3)
        for c in head(10):  # one byte every 0.3 s: uvicorn's keep-alive timer alone never fires
            try:
                s.sendall(bytes([c]))
                if s.recv(1024) == b"":
                    closed = True
                    break
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                closed = True
                break
        took = time.monotonic() - t0
    assert closed and READ_TIMEOUT <= took < READ_TIMEOUT + 2, took


def test_concurrent_uploads_hold_to_the_memory_budget(server):
    """4 uploads at once; the specialist takes 0.3 s, so a decoded image waits for it holding its
    memory: with room for one image at a time the budget's peak is one image; with room for
    three, three (the budget lets them overlap, it does not serialise everything)."""
    import httpx

    host, port, analyzer = server
    images = [encode(texture(300 + k, (640, 480)), "PNG") for k in range(4)]
    work = inspect(images[0]).work_bytes
    assert work == 640 * 480 * 7  # RGB: 7 bytes per pixel (images.WORK_PER_PIXEL)
    for room, peak in ((1.5, work), (3.2, 3 * work)):
        analyzer.memory = MemoryBudget(int(room * work))
        statuses = []

        def send(data):
            r = httpx.post(f"http://{host}:{port}/analyze", files={"image": ("a.png", data, "image/png")},
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            statuses.append(r.status_code)

        threads = [threading.Thread(target=send, args=(d,)) for d in images]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 4 and analyzer.memory.peak == peak and analyzer.memory.used == 0


def test_the_budget_never_exceeds_its_limit_and_a_larger_image_runs_alone():
    budget, inside, worst, lock = MemoryBudget(100), [], [0], threading.Lock()

    def work(n):
        with budget.hold(n):
            with lock:
                inside.append(min(n, 100))
                worst[0] = max(worst[0], sum(inside))
            time.sleep(0.01)
            with lock:
                inside.remove(min(n, 100))

    threads = [threading.Thread(target=work, args=(n,)) for n in [30, 50, 70, 20, 250, 40, 60] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert worst[0] <= 100 and budget.peak <= 100 and budget.used == 0


def test_memory_bounds_come_from_the_header_before_any_pixel_is_decoded():
    # 8,000 x 6,000 RGB declared by a 100-byte PNG: refused from the header (decoding it would
    # be a decode_error: there is no pixel data behind it)
    data = png_header_only(8000, 6000)
    h = inspect(data, Bounds(max_pixels=10**9))
    assert (h.size, h.mode, h.decoded_bytes, h.work_bytes) == ((8000, 6000), "RGB", 144_000_000, 336_000_000)
    with pytest.raises(ImageReject) as e:
        inspect(data, Bounds(max_pixels=10**9, max_bytes=100_000_000))
    assert (e.value.reason, e.value.detail) == ("too_many_pixels", "8000x6000 RGB decodes to 144 MB > the 100 MB "
                                                "ceiling (w x h x bands x bytes per sample)")
    assert Header("PNG", (100, 100), "P", transparency=True).work_bytes == 100 * 100 * 17  # through RGBA
    assert Header("TIFF", (100, 100), "I;16").decoded_bytes == 20_000
    buf = io.BytesIO()
    Image.new("RGBA", (64, 64)).save(buf, "PNG")
    assert inspect(buf.getvalue()).work_bytes == 64 * 64 * 17


def test_fracdata_serve_itself_cuts_off_trickling_headers_and_checks_the_token_first(tmp_path):
    """The CLI wires the guard and the protocol (the fixture above builds them by hand)."""
    import subprocess
    import sys

    from tests.support.hostile import ROOT

    with OpenAIStub(responder=spec_responder) as stub:
        env = dict(os.environ, FRACDATA_SERVE_TOKEN=TOKEN, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}")
        proc = subprocess.Popen([sys.executable, "-m", "fracdata", "serve", "--port", "0", "--read-timeout", "1",
                                 "--specialist", spec_entry(tmp_path, stub.base_url), "--generalist", "none",
                                 "--out", str(tmp_path / "out")], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            line = next(x for x in proc.stdout if x.startswith("serving "))
            host, port = line.split()[1].removeprefix("http://").rstrip("/").split(":")
            with socket.create_connection((host, int(port))) as s:
                s.sendall(head(150_000, "nope"))
                took, got = answer(s)
            assert got.startswith(b"HTTP/1.1 401 ") and took < 1, got[:100]
            with socket.create_connection((host, int(port))) as s:
                s.sendall(b"POST /analyze HTTP/1.1\r\nHo")  # and no more
                took, got = answer(s, timeout=10)
            assert got == b"" and 1 <= took < 4, (took, got)
        finally:
            proc.terminate()
            proc.wait(20)
            proc.stdout.close()

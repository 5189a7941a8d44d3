"""`fracdata serve`: the FastAPI app in-process (Starlette's test client), schemathesis against its
OpenAPI spec, and the real server (uvicorn) with the HTML page in headless Chromium."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.checks import not_a_server_error
from starlette.testclient import TestClient

from fracdata.images import image_id
from fracdata.records import sha256_bytes
from tests.support.analyze_kit import GEN_KEY, GEN_KEY_ENV, gen_entry, gen_responder, prices, spec_entry, spec_responder
from tests.support.openai_server import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "serve-test-token-7"
MB = 1_000_000


def png(size=(96, 80), color=(90, 100, 110)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    os.environ[GEN_KEY_ENV] = GEN_KEY  # module scope: monkeypatch is per test
    with OpenAIStub(responder=spec_responder) as spec, OpenAIStub(responder=gen_responder, api_key=GEN_KEY) as gen:
        yield {"tmp": tmp, "spec": spec_entry(tmp, spec.base_url), "gen": gen_entry(tmp, gen.base_url),
               "prices": prices(tmp)}
    os.environ.pop(GEN_KEY_ENV, None)


def make_app(stubs, out: Path | None = None, token: str | None = None, max_mb: float = 32):
    from fracdata.analyze.options import build_analyzer
    from fracdata.serve import add_arguments
    from fracdata.serve.app import create_app

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--specialist", stubs["spec"], "--generalist", stubs["gen"], "--prices", stubs["prices"]])
    env = "FRACDATA_TEST_SERVE_TOKEN"
    os.environ.pop(env, None)
    if token:
        os.environ[env] = token
    try:
        return create_app(build_analyzer(args, log=lambda m: None), int(max_mb * MB), env, out)
    finally:
        os.environ.pop(env, None)


@pytest.fixture(scope="module")
def client(stubs):
    with TestClient(make_app(stubs, out=stubs["tmp"] / "out", token=TOKEN, max_mb=4)) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_analyze_returns_the_analysis_and_logs_it(client, stubs):
    data = png()
    r = client.post("/analyze", files={"image": ("../../etc/x.png", data, "image/png")},
                    data={"context": "7075-T6 lug"}, headers=AUTH)
    assert r.status_code == 200, r.text
    a = r.json()
    assert (a["id"], a["file_sha256"], a["image"], a["context"]) == (image_id(data), sha256_bytes(data), "x.png", "7075-T6 lug")
    assert [f["id"] for f in a["specialist"]["features"]] == ["river_pattern", "beach_marks"]
    assert a["generalist"]["report"]["fracture_mode"]["cites"] == ["river_pattern", "beach_marks"] and a["flags"] == []
    assert a["needs_person"] is True and a["specialist"]["probability_kind"] == "none"  # an endpoint vouches for nothing
    out = stubs["tmp"] / "out"
    logged = [json.loads(x) for x in (out / "analyses.jsonl").read_text().splitlines()]
    assert logged == [a]
    assert sorted(p.name for p in out.glob(f"{a['id'][:12]}.*")) == [f"{a['id'][:12]}.{s}" for s in ("json", "md", "png")]


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok", "specialist": "spec", "generalist": "gen",
                                             "schema_version": 2, "max_upload_bytes": 4 * MB, "token_required": True}
    spec = client.get("/openapi.json").json()
    assert sorted(spec["paths"]) == ["/analyze", "/healthz"]
    body = spec["paths"]["/analyze"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    assert client.get("/").text.startswith("<!doctype html>")


@pytest.mark.parametrize("header, detail", [
    ({}, "missing bearer token: send `Authorization: Bearer <token>`"),
    ({"Authorization": "Bearer nope"}, "wrong bearer token"),
])
def test_missing_or_wrong_token_is_401(client, header, detail):
    r = client.post("/analyze", files={"image": ("a.png", png(), "image/png")}, headers=header)
    assert (r.status_code, r.json(), r.headers["www-authenticate"]) == (401, {"detail": detail}, "Bearer")


def test_a_50_mb_upload_is_413_before_it_is_read(client):
    r = client.post("/analyze", files={"image": ("big.tif", b"\0" * (50 * MB), "image/tiff")}, headers=AUTH)
    assert r.status_code == 413
    assert r.json()["detail"].startswith("upload of 50.0 MB is larger than the limit of 4 MB")


def test_a_chunked_upload_over_the_limit_is_413(client):
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def chunks():  # a generator body: no Content-Length, the limit is counted as it streams
        yield head
        for _ in range(6):
            yield b"\0" * MB
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/analyze", content=chunks(), headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (r.status_code, r.json()) == (413, {"detail": "upload is larger than the limit of 4 MB (fracdata serve --max-upload-mb)"})


@pytest.mark.parametrize("part, status, detail", [
    (("notes.png", b"just some text\n" * 10, "image/png"), 415,
     "notes.png: not_an_image: not a recognised image format (first bytes b'just som')"),
    (("notes.txt", png(), "text/plain"), 415, "the `image` part is declared as 'text/plain', not an image"),
    (("tiny.png", png((20, 20)), "image/png"), 422, "tiny.png: too_small: 20x20: shorter side < --min-side 64"),
    (("empty.png", b"", "image/png"), 422, "empty.png: empty_file: the file has 0 bytes"),
])
def test_content_is_sniffed_not_trusted(client, part, status, detail):
    r = client.post("/analyze", files={"image": part}, headers=AUTH)
    assert (r.status_code, r.json()) == (status, {"detail": detail})


def test_not_multipart_is_415(client):
    r = client.post("/analyze", content=png(), headers={**AUTH, "Content-Type": "image/png"})
    assert (r.status_code, r.json()) == (415, {"detail": "POST /analyze takes multipart/form-data with the image in the `image` field"})


# -- schemathesis: generated requests from the OpenAPI spec never get a 5xx ----------------------
# (Explicit hypothesis loops rather than schemathesis' pytest plugin, whose collection hook fails
# on this pytest version: "'Function' object has no attribute '_nodeid'".)
@pytest.mark.slow
def test_no_5xx_for_generated_requests(stubs):
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(stubs, max_mb=1))
    ops = [r.ok() for r in schema.get_all_operations()]
    assert sorted(f"{op.method.upper()} {op.path}" for op in ops) == ["GET /healthz", "POST /analyze"]
    seen = []
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case):
            response = case.call_and_validate(checks=[not_a_server_error])
            seen.append(response.status_code)

        check()
    assert len(seen) >= 31 and max(seen) < 500  # GET /healthz has one case; POST /analyze up to 30


# -- the real server and the page in headless Chromium -------------------------------------------
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
RUNNER = "import sys; from fracdata.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def server(stubs):
    env = {**os.environ, GEN_KEY_ENV: GEN_KEY}
    env.pop("FRACDATA_SERVE_TOKEN", None)
    cmd = [sys.executable, "-c", RUNNER, "serve", "--port", "0", "--specialist", stubs["spec"], "--generalist",
           stubs["gen"], "--prices", stubs["prices"], "--out", str(stubs["tmp"] / "served")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # the models load, then it prints where it listens
            if line.startswith("serving "):
                url = line.split()[1]
                break
        else:
            raise AssertionError(f"fracdata serve exited ({proc.wait()}) without serving")
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        yield url, line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        proc.stdout.close()


@pytest.mark.slow
def test_real_server_healthz_and_50_mb(server):
    import httpx

    url, line = server
    assert line.rstrip().endswith(f"token not required; uploads up to 32 MB; queue up to 64 (then 503); writing to {Path(line.split()[-1].rstrip('/'))}/")
    assert httpx.get(url + "healthz").json()["status"] == "ok"
    r = httpx.post(url + "analyze", files={"image": ("big.png", b"\0" * (50 * MB), "image/png")}, timeout=60)
    assert (r.status_code, r.json()["detail"][:46]) == (413, "upload of 50.0 MB is larger than the limit of ")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed: apt-get install -y chromium")
def test_page_in_headless_chromium(server, tmp_path):
    """The page draws a demo image, posts it, renders the report: the DOM after its scripts ran
    shows the report, and the screenshot is saved (reports/test-artifacts/serve_page.png, git-ignored)."""
    url, _ = server
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=20000"]

    def chromium(*extra):
        profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
        return subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", *extra, url + "?demo=1"],
                              capture_output=True, text=True, timeout=120)

    dom = chromium("--dump-dom").stdout
    assert 'data-state="done"' in dom, dom[-2000:]
    for text in ("Report: demo.png", "Specialist: spec (none probabilities)", "river patterns", "Generalist: gpt-5.5",
                 '<div class="person">Needs a person (threshold 0.90): the specialist gives no per-feature probabilities',
                 "Fatigue crack growth followed by overload.", '<span class="cite">beach_marks</span>'):
        assert text in dom
    shot = ROOT / "reports" / "test-artifacts" / "serve_page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    chromium(f"--screenshot={shot}")
    with Image.open(shot) as im:
        assert im.size == (1280, 900)
        # the report panel is white and the page background gray: a blank or error page is one colour
        assert len(im.convert("RGB").getcolors(1 << 20)) > 50

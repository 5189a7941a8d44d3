"""A real Label Studio server on a free loopback port, for tests (and the docs' screenshots).

    with label_studio(tmp_path) as ls:        # ls.url, ls.admin_token (legacy), ls.log
        ann = signup(ls.url, "ann1@lab.test", "secret-pass-1")    # an httpx session, as a browser
        task = next_task(ann, project)                             # the labelling stream's next task
        annotate(ann, task["id"], result)                          # what the Submit button sends

The server runs from its own virtualenv (`make label-studio`, label-studio==LS_VERSION; built
here through make when missing, which needs PyPI) with a temporary data dir seeded from the
migrated empty database that make keeps in the venv (saves ~100 s of migrations per start).
The admin user and its legacy token come from Label Studio's own start-up environment
(LABEL_STUDIO_USERNAME / _PASSWORD / _USER_TOKEN, legacy tokens enabled for the organisation by
LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN); `personal_access_token` asks the server for a JWT
personal access token, the default kind in Label Studio >= 1.18. Annotators sign up through
the invite link and annotate with their browser session (cookie + CSRF header), as the web UI does.
Nothing here reaches the network: the version check, analytics and Sentry are switched off.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LS_VERSION = "1.23.2"  # the Makefile's LABEL_STUDIO_VERSION
ADMIN, ADMIN_PASSWORD, ADMIN_TOKEN = "admin@fracdata.test", "admin-pass-1234", "fracdata-test-legacy-token-0123"
QUIET = {"LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}


def venv() -> Path:
    """Label Studio's virtualenv, built with `make label-studio` when missing (~1.5-3 min, PyPI)."""
    path = Path(os.environ.get("FRACDATA_LABEL_STUDIO_VENV") or ROOT / ".venv-label-studio")
    stamp = path / f".installed-{LS_VERSION}"
    if not stamp.exists():
        subprocess.run(["make", "-s", "label-studio", f"LS_VENV={path}"], cwd=ROOT, check=True)
    return path


@dataclass
class Server:
    url: str
    admin_token: str
    log: Path
    proc: subprocess.Popen


@contextlib.contextmanager
def label_studio(folder: Path, start_timeout: float = 400):
    home = venv()
    data = folder / "ls-data"
    data.mkdir(parents=True)
    template = home / "template" / "label_studio.sqlite3"
    if template.exists():
        shutil.copyfile(template, data / "label_studio.sqlite3")
    env = {**os.environ, **QUIET, "LABEL_STUDIO_USERNAME": ADMIN, "LABEL_STUDIO_PASSWORD": ADMIN_PASSWORD,
           "LABEL_STUDIO_USER_TOKEN": ADMIN_TOKEN, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "DATABASE_NAME"):
        env.pop(key, None)
    from tests.support.lf_api import free_port

    port = free_port()
    log = folder / "label-studio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(home / "bin" / "label-studio"), "start", "--no-browser", "--internal-host",
                                 "127.0.0.1", "--port", str(port), "--data-dir", str(data)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _wait(proc, log, start_timeout)
        yield Server(url, ADMIN_TOKEN, log, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # its own process group (start_new_session): by id
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(proc, log: Path, timeout: float) -> str:
    import httpx

    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"label-studio exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        if url is None:  # Label Studio moves to the next port when one is taken: read where it went
            m = re.search(r"Starting development server at (http://127\.0\.0\.1:\d+)/", log.read_text(errors="replace"))
            url = m.group(1) if m else None
        if url is not None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return url
        time.sleep(0.5)
    raise AssertionError(f"label-studio did not start in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def admin(server: Server):
    import httpx

    return httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.admin_token}"}, timeout=60)


def personal_access_token(server: Server) -> str:
    """A JWT personal access token for the admin (what Account & Settings > Personal Access Token shows)."""
    r = admin(server).post("/api/token/")
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def signup(url: str, email: str, password: str, invite: str | None = None):
    """Sign up through the invite link's form, as a new annotator does; return their browser session."""
    import httpx

    c = httpx.Client(base_url=url, timeout=60)
    path = invite or "/user/signup/"
    r = c.post(path, data={"csrfmiddlewaretoken": _csrf(c, path), "email": email, "password": password},
               headers={"Referer": url + path})
    assert r.status_code == 302, (r.status_code, r.text[:500])
    assert c.get("/api/current-user/whoami").json()["email"] == email
    return c


def next_task(session, project: int) -> dict | None:
    """The next task of the labelling stream (the "Label All Tasks" button), or None when done."""
    r = session.get(f"/api/projects/{project}/next")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text[:500]
    return r.json()


def annotate(session, task_id: int, result: list, project: int | None = None, **extra) -> dict:
    """Submit an annotation with the session cookie and CSRF header, as the Submit button does."""
    r = session.post(f"/api/tasks/{task_id}/annotations/", json={"result": result, "lead_time": 4.2, **extra},
                     params={"project": project} if project else None,
                     headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": str(session.base_url)})
    assert r.status_code == 201, (r.status_code, r.text[:500])
    return r.json()


def choices(features_by_group: dict[str, list[str]], flags=()) -> list:
    """An annotation result: one `choices` item per group with features, plus the flags."""
    res = [{"from_name": g, "to_name": "image", "type": "choices", "value": {"choices": list(v)}}
           for g, v in features_by_group.items() if v]
    if flags:
        res.append({"from_name": "flags", "to_name": "image", "type": "choices", "value": {"choices": list(flags)}})
    return res

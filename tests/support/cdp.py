"""Headless Chromium driven over the DevTools protocol: open a page with cookies, wait, screenshot.

    with chromium(tmp) as browser:
        png = browser.screenshot(url, cookies={"sessionid": ...}, ready="document.querySelector('.lsf-choices')")

Why not `chromium --screenshot URL`: Label Studio's labelling view needs a logged-in session,
and the command line cannot set a cookie. Flags: --headless --no-sandbox --disable-gpu, no
background networking, component updates or sync, a fresh --user-data-dir. Needs the
`websockets` package (installed with llamafactory's gradio; `pip install websockets` otherwise).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0"]


class Browser:
    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self._ws = connect(ws_url, max_size=64 << 20)
        self._n = 0

    def call(self, method: str, **params):
        self._n += 1
        self._ws.send(json.dumps({"id": self._n, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def screenshot(self, url: str, cookies: dict[str, str], ready: str, size=(1280, 900), timeout=90,
                   settle: float = 1.5, before: str | None = None, hover: str | None = None) -> bytes:
        """Open url with cookies, wait until the JS `ready` is true, run `before`, move the mouse onto
        the element the JS `hover` returns (to show its tooltip), wait `settle` s, return the PNG."""
        self.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)
        for name, value in cookies.items():
            self.call("Network.setCookie", name=name, value=value, url=url)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.call("Runtime.evaluate", expression=f"!!({ready})", returnByValue=True)["result"].get("value"):
            if time.monotonic() > deadline:
                html = self.call("Runtime.evaluate", expression="document.body.innerText.slice(0, 800)",
                                 returnByValue=True)["result"].get("value")
                raise TimeoutError(f"{url}: page not ready after {timeout} s ({ready}); it shows: {html!r}")
            time.sleep(0.5)
        if before:
            self.call("Runtime.evaluate", expression=before)
            time.sleep(0.5)
        if hover:
            js = f"(() => {{ const r = ({hover}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            x, y = self.call("Runtime.evaluate", expression=js, returnByValue=True)["result"]["value"]
            self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        time.sleep(settle)  # images decode and fonts settle after the element appears
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])


@contextlib.contextmanager
def chromium(profile: Path):
    if CHROMIUM is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's stale port
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        browser = Browser(page["webSocketDebuggerUrl"])
        browser.call("Network.enable")
        yield browser
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

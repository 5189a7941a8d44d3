"""`llamafactory-cli api` serving a checkpoint on a free loopback port, for tests.

    with llamafactory_api(model_dir, tmp_path, name="tiny") as (base_url, log_path):
        ...   # OpenAI-compatible Chat Completions at base_url (ends in /v1)

The server is stopped with SIGINT (its own shutdown path), then killed if it lingers. Its log
(including the requests it received) stays at log_path for assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llamafactory_api(model_dir, folder: Path, name: str, start_timeout: float = 180):
    port = free_port()
    config = folder / "api.yaml"
    config.write_text(f"model_name_or_path: {model_dir}\ntemplate: qwen3_vl_nothink\ninfer_backend: huggingface\n")
    env = dict(os.environ, API_HOST="127.0.0.1", API_PORT=str(port), API_MODEL_NAME=name)
    log_path = folder / "api.log"
    log = open(log_path, "wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("llamafactory-cli")), "api", str(config)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    assert json.load(r)["data"][0]["id"] == name
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, f"llamafactory-cli api did not start in {start_timeout:.0f} s"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", log_path
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
            log.close()

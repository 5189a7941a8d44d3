"""A local stand-in for the part of the Hugging Face Hub API that `huggingface_hub`'s commits use.

A real HTTP server on 127.0.0.1 (random port) in a background thread; the client is the real
`huggingface_hub` (HfApi.create_repo, create_commit), pointed at it with HF_ENDPOINT. Every file
is answered "regular" upload mode, so each arrives inline (base64) in the commit's NDJSON body,
with no LFS or Xet transfer to imitate.

    with HubStub() as hub:                      # hub.url: the HF_ENDPOINT value
        ...
        hub.repos        # {(repo_type, repo_id): {"private": bool}}
        hub.files        # {(repo_type, repo_id): {path in repo: bytes}}, after the commits
        hub.tokens       # the bearer tokens seen (from the Authorization header)
        hub.validated    # README.md texts posted to /api/validate-yaml

Endpoints: POST /api/repos/create, POST /api/validate-yaml, POST /api/{type}s/{repo}/preupload/{rev},
POST /api/{type}s/{repo}/commit/{rev}. Anything else is a 404 JSON error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    hub: "HubStub"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - http.server's name
        hub = self.hub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            hub.tokens.append(auth.removeprefix("Bearer "))
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            body = json.loads(raw)
            kind = body.get("type") or "model"
            repo = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            hub.repos[(kind, repo)] = {"private": body.get("visibility") == "private" or bool(body.get("private"))}
            hub.files.setdefault((kind, repo), {})
            prefix = "" if kind == "model" else f"{kind}s/"
            return self._send(200, {"url": f"{hub.url}/{prefix}{repo}", "name": repo})
        if path == "/api/validate-yaml":
            hub.validated.append(json.loads(raw)["content"])
            return self._send(200, {"errors": [], "warnings": []})
        m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit)/([^/]+)", path)
        if not m:
            return self._send(404, {"error": f"stand-in: no route {path}"})
        kind, repo, action = m.group(1)[:-1], m.group(2), m.group(3)
        if (kind, repo) not in hub.repos:
            return self._send(404, {"error": f"Repository {repo} not found"})
        if action == "preupload":
            files = json.loads(raw)["files"]
            return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})
        store = hub.files[(kind, repo)]
        for line in raw.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                store[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        oid = hashlib.sha1(raw).hexdigest()
        prefix = "" if kind == "model" else f"{kind}s/"
        hub.commits.append((kind, repo, oid))
        return self._send(200, {"commitUrl": f"{hub.url}/{prefix}{repo}/commit/{oid}", "commitOid": oid})


class HubStub:
    def __init__(self):
        self.repos: dict = {}
        self.files: dict = {}
        self.tokens: list[str] = []
        self.validated: list[str] = []
        self.commits: list = []
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HubStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

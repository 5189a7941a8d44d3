"""Label Studio's HTTP API, the few calls a review needs (plain httpx, which the openai SDK brings).

Why not label-studio-sdk: it pulls in pandas, opencv, nltk and a code generator for the six
calls below. Calls, as of Label Studio 1.23 (the version the tests run):
  POST  /api/projects/                                       create (title, label_config, settings)
  POST  /api/projects/{id}/import?commit_to_project=false    upload one image file (no task made)
  GET   /api/import/file-upload/{fid}                        where it went: /data/<file>
  PATCH /api/projects/{id}/                                  the real labelling view
  POST  /api/projects/{id}/import?return_task_ids=true       the tasks (JSON), with their ids
  GET   /api/projects/{id}/export?exportType=JSON            tasks with annotations (the UI's JSON export)
  GET   /api/users/                                          user id -> email (the export has ids only)
Uploads come before the view because Label Studio refuses a direct file upload into a project
whose view has more than one data field (ours has image, caption, excerpts, source).

Tokens: a legacy token is sent as `Authorization: Token <key>`. A personal access token (the
default in recent versions) is a JWT refresh token: it is exchanged at /api/token/refresh/
for a short-lived access token sent as `Bearer`, which is what label-studio-sdk does too.
"""

from __future__ import annotations

import base64
import json
import os

from fracdata.errors import FracdataError

URL_ENV, TOKEN_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"


def _jwt_type(token: str) -> str | None:
    """The `token_type` claim of a JWT (not verified: the server does that), or None for a legacy key."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims.get("token_type", "access") if isinstance(claims, dict) else None


def _get(obj, key: str, call: str):
    """obj[key], or a one-line error: a proxy or another server answering in Label Studio's place."""
    if not isinstance(obj, dict) or obj.get(key) is None:
        raise FracdataError(f"Label Studio {call}: unexpected answer without {key!r}: {str(obj)[:200]}")
    return obj[key]


class Studio:
    def __init__(self, url: str | None, token: str | None, timeout: float = 120):
        import httpx

        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        if not url:
            raise FracdataError(f"no Label Studio URL: pass --url or set {URL_ENV} (or use the file route: "
                                "import tasks.json in the UI, then fracdata review import DIR --export FILE)")
        if not token:
            raise FracdataError(f"no Label Studio token: pass --token or set {TOKEN_ENV} "
                                "(Account & Settings > Personal Access Token or Legacy Token)")
        self.url = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        kind = _jwt_type(token)
        if kind == "refresh":
            access = _get(self._call("POST", "/api/token/refresh/", json={"refresh": token}, auth=False),
                          "access", "POST /api/token/refresh/")
            self._auth = f"Bearer {access}"
        else:
            self._auth = f"Bearer {token}" if kind else f"Token {token}"

    def _call(self, method: str, path: str, auth: bool = True, **kw):
        import httpx

        headers = {"Authorization": self._auth} if auth else {}
        try:
            r = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as e:
            raise FracdataError(f"cannot reach Label Studio at {self.url} ({type(e).__name__}: {e}): is it running? "
                                "(make label-studio-start; or use the file route)") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                detail = body.get("detail") or body
                if body.get("validation_errors"):
                    detail = f"{detail}: {body['validation_errors']}"
            except ValueError:
                detail = r.text[:200]
            detail = str(detail).replace(self._token, "<token>")
            hint = " (check --token / LABEL_STUDIO_API_KEY)" if r.status_code in (401, 403) else ""
            raise FracdataError(f"Label Studio {method} {path}: HTTP {r.status_code}: {detail}"[:400] + hint)
        try:
            return r.json() if r.content else None
        except ValueError:
            raise FracdataError(f"Label Studio {method} {path}: the answer is not JSON "
                                f"(is {self.url} a Label Studio server?)") from None

    def create_project(self, title: str, description: str, **settings) -> int:
        # A single-field view first, so that image files can be uploaded (see the module docstring).
        body = {"title": title[:50], "description": description,
                "label_config": '<View><Image name="image" value="$image"/></View>', **settings}
        return int(_get(self._call("POST", "/api/projects/", json=body), "id", "POST /api/projects/"))

    def upload_image(self, project: int, data: bytes, mime: str, name: str) -> str:
        """Upload one image (no task is made); return the URL a task can show it with."""
        res = self._call("POST", f"/api/projects/{project}/import", params={"commit_to_project": "false"},
                         files={"file": (name, data, mime)})
        ids = _get(res, "file_upload_ids", f"import of {name}")
        if not isinstance(ids, list) or len(ids) != 1:
            raise FracdataError(f"Label Studio import of {name}: expected one file upload, got {ids}")
        path = f"/api/import/file-upload/{ids[0]}"
        return "/data/" + str(_get(self._call("GET", path), "file", f"GET {path}"))

    def set_label_config(self, project: int, xml: str) -> None:
        self._call("PATCH", f"/api/projects/{project}/", json={"label_config": xml})

    def import_tasks(self, project: int, tasks: list[dict]) -> list[int]:
        res = self._call("POST", f"/api/projects/{project}/import", params={"return_task_ids": "true"}, json=tasks)
        return list(_get(res, "task_ids", "import of the tasks"))

    def export(self, project: int) -> list:
        return self._call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})

    def users(self) -> dict[int, str]:
        res = self._call("GET", "/api/users/", params={"page_size": 10000})
        rows = res.get("results", []) if isinstance(res, dict) else res
        if not isinstance(rows, list):
            raise FracdataError("Label Studio GET /api/users/: unexpected answer")
        return {int(u["id"]): u.get("email") or u.get("username") for u in rows
                if isinstance(u, dict) and isinstance(u.get("id"), int) and (u.get("email") or u.get("username"))}

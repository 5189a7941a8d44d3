"""The HTTP service behind `fracdata serve` (FastAPI): POST /analyze, GET /healthz, GET / (the page).

Checks, in the order a request meets them (each a one-line JSON `detail`); the first three are
answered from the headers, before the body is read (fracdata/serve/guard.py):
  415  the body is not multipart/form-data
  401  a bearer token is set (env var) and the request lacks it or has another one (POST /analyze)
  413  the body is larger than the limit: refused from Content-Length before it is read, and
       counted while it streams when there is none (chunked)
  408  the client stalls (nothing for --read-timeout s) or trickles (the body not in by its deadline)
  415  the `image` part is declared as something other than image/* or application/octet-stream
  415/413/422  the bytes, opened by the image gate every stage uses (fracdata.images), are no
       image or a damaged one (not_an_image, unsupported_format, multi_frame, decode_error) / too
       many pixels or too many decoded bytes / too small, extreme aspect, empty
  502  the specialist failed (the message names its endpoint); a generalist failure is a 200
       with the specialist-only result, flagged, as in the CLI
  503  --max-queue requests are already inside: answered at once, with Retry-After (guard.py)
Every refusal is logged on stderr, one line each (guard.py).
Uploads stay in Starlette's spooled file (1 MB in memory, the rest on disk) until decoded, and
decoding is held to the analyzer's memory budget (fracdata.analyze.pipeline.MemoryBudget), so
concurrent large-pixel uploads wait for each other instead of adding up.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at runtime
# and they name classes imported inside create_app.
import hmac
import os
import threading
from importlib import resources
from pathlib import Path

SNIFF_STATUS = {"too_many_pixels": 413, "too_small": 422, "extreme_aspect_ratio": 422, "empty_file": 422}
ACCEPTED_PART_TYPES = ("image/", "application/octet-stream")


def page_html() -> str:
    return resources.files("fracdata").joinpath("static", "index.html").read_text(encoding="utf-8")


def create_app(analyzer, max_upload_bytes: int = 32_000_000, token_env: str = "FRACDATA_SERVE_TOKEN",
               out_dir: Path | None = None, read_timeout: float = 30.0, max_queue: int | None = None):
    """The FastAPI app. `analyzer` is a fracdata.analyze.pipeline.Analyzer (models loaded once).
    When `out_dir` is set each analysis is also written there (json/md/png) and appended to
    <out_dir>/analyses.jsonl, the audit trail of what was asked and what it cost."""
    from fastapi import Depends, FastAPI, File, Form, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel

    from fracdata import __version__
    from fracdata.analyze.schema import SCHEMA_VERSION, Analysis
    from fracdata.errors import FracdataError
    from fracdata.images import ImageReject
    from fracdata.serve.guard import Guard

    token = os.environ.get(token_env) or None
    bearer = HTTPBearer(auto_error=False)
    log_lock = threading.Lock()
    app = FastAPI(title="fracdata analyze", version=__version__,
                  description="A fine-tuned fractography specialist reads the image; a general model writes a "
                              "report that cites the specialist's features. "
                              + (f"POST /analyze needs `Authorization: Bearer <${token_env}>`." if token else ""))
    app.add_middleware(Guard, max_bytes=max_upload_bytes, token=token, read_timeout=read_timeout,
                       **({"max_queue": max_queue} if max_queue else {}))

    class Health(BaseModel):
        status: str
        specialist: str
        generalist: str | None
        schema_version: int
        max_upload_bytes: int
        token_required: bool

    def authorise(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        if creds is None:
            raise HTTPException(401, "missing bearer token: send `Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return page_html()

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        g = analyzer.generalist
        return Health(status="ok", specialist=analyzer.specialist.entry.name, generalist=g.entry.name if g else None,
                      schema_version=SCHEMA_VERSION, max_upload_bytes=max_upload_bytes, token_required=token is not None)

    @app.post("/analyze", response_model=Analysis, dependencies=[Depends(authorise)],
              responses={401: {"description": "missing or wrong bearer token"},
                         408: {"description": "the client stalled or sent the body too slowly"},
                         413: {"description": "upload or image too large"},
                         415: {"description": "not multipart, or the `image` part is not an image"},
                         422: {"description": "an image that cannot be analysed (too small, extreme aspect)"},
                         502: {"description": "the specialist failed (the detail names its endpoint)"},
                         503: {"description": "the queue is full: retry after the Retry-After header's seconds"}})
    def analyze(image: UploadFile = File(..., description="the fractograph (PNG, JPEG, TIFF, BMP, WebP)"),
                context: str | None = Form(None, max_length=8000, description="material, loading, service history")):
        declared = (image.content_type or "").lower()
        if declared and not declared.startswith(ACCEPTED_PART_TYPES):
            raise HTTPException(415, f"the `image` part is declared as {declared!r}, not an image")
        name = Path(image.filename or "upload").name[:200] or "upload"
        try:  # the spooled upload itself: its bytes are read by the gate, under the memory budget
            analysis, im = analyzer.analyse(image.file, name, (context or "").strip() or None)
        except ImageReject as e:
            raise HTTPException(SNIFF_STATUS.get(e.reason, 415), f"{name}: {e.reason}: {e.detail}") from None
        except FracdataError as e:
            raise HTTPException(502, str(e)) from None
        if out_dir is not None:
            from fracdata.analyze.report import write_outputs
            from fracdata.analyze.watch import append_line

            write_outputs(analysis, im, out_dir)
            with log_lock:
                append_line(out_dir / "analyses.jsonl", analysis.model_dump(mode="json"))
        return analysis

    return app

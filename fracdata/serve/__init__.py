"""`fracdata serve`: the analysis as a small HTTP service (FastAPI + uvicorn) and one HTML page.

    FRACDATA_SERVE_TOKEN=... fracdata serve --specialist tiny-ft [--port 8000] [--out reports/serve]

POST /analyze (multipart `image`, optional `context`) returns the Analysis JSON (schema
fracdata-analysis v1); GET /healthz; GET /openapi.json (and /docs); GET / is the page: drop an
image, read the report. Bound to 127.0.0.1 unless --host says otherwise; another host needs a
token (or --allow-no-token), since every request can spend money on the generalist.
Models load once at start; analyses run one at a time (a local checkpoint is not re-entrant).
Hostile clients: the token and the size are checked from the headers before the body is read,
a client that stalls or trickles gets 408 or is cut off (--read-timeout), and image decoding is
held to --decode-memory-mb at once (fracdata/serve/guard.py, fracdata.analyze.pipeline).
The command line is cli.py, the app app.py.
"""

from fracdata.serve.cli import add_arguments, run

__all__ = ["add_arguments", "run"]

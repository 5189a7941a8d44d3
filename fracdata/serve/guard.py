"""What `fracdata serve` checks before a request reaches the app, and how long it waits for one.

`Guard` (pure ASGI middleware) answers POST /analyze from its headers alone, before one byte of
the body is read: 415 not multipart, 401 missing or wrong bearer token (a stranger cannot make
the server read 32 MB), 413 a Content-Length over the limit. While the body streams it counts it
(413 for a chunked body over the limit) and times it: 408 when the client sends nothing for
`read_timeout` seconds, or has not sent the whole body by its deadline (read_timeout + the limit
at MIN_RATE: 32 MB at 100 kB/s -> 350 s), so a client that trickles cannot hold a worker.

It also bounds the queue: at most `max_queue` POST /analyze requests are inside at once (being
read, waiting for the analyzer, or analysed); one more is answered 503 at once, with a
Retry-After of the queue's expected wait (requests ahead x the mean analysis time, 1..120 s), so
a burst gets an answer for every request instead of connections that time out or are dropped.
Every request refused (any 4xx or 5xx, the app's included) is logged as one line on stderr:
`serve: refused POST /analyze from HOST:PORT: 503 <detail>`.

Headers never reach an ASGI app until they are complete, so their deadline lives in the HTTP
protocol: `guarded_protocol` wraps uvicorn's and closes a connection whose request headers are
not complete `read_timeout` seconds after it opened or after its last response (uvicorn's own
keep-alive timeout is cancelled by any byte, so one byte every few seconds kept a connection
forever).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import sys
import time

MIN_RATE = 100_000  # bytes/s a client must average over a whole upload
DEFAULT_MAX_QUEUE = 64  # requests inside at once; one analysis at a time, so ~64 x its time of waiting


def log_refusal(scope, status: int, detail: str) -> None:
    client = scope.get("client") or ("?", 0)
    print(f"serve: refused {scope.get('method')} {scope.get('path')} from {client[0]}:{client[1]}: {status} "
          f"{detail[:300]}", file=sys.stderr, flush=True)


class Guard:
    def __init__(self, app, max_bytes: int, token: str | None, read_timeout: float = 30.0,
                 max_queue: int = DEFAULT_MAX_QUEUE):
        self.app, self.max_bytes, self.token, self.read_timeout = app, max_bytes, token, read_timeout
        self.max_queue, self.inside = max_queue, 0
        self.mean_s, self.last_done = 1.0, None  # seconds per analysis, smoothed; when the last one ended

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/analyze" or scope["method"] != "POST":
            return await self.app(scope, receive, logged(scope, send))
        if self.inside >= self.max_queue:
            wait = max(1, min(120, math.ceil(self.inside * self.mean_s)))
            return await self._refuse(scope, receive, send, 503, f"busy: {self.inside} requests queued or being "
                                      f"analysed (fracdata serve --max-queue {self.max_queue}); retry after {wait} s",
                                      **{"Retry-After": str(wait)})
        self.inside += 1
        t0 = time.monotonic()
        try:
            status = await self._guarded(scope, receive, send)
        finally:
            self.inside -= 1
        if status == 200:  # the queue's pace, for Retry-After (0.2 weight: a few analyses to settle)
            now = time.monotonic()
            # one analysis: the time since the previous one ended (a busy queue), or since this
            # request came in (an idle one), whichever is shorter
            took = now - t0 if self.last_done is None else min(now - t0, now - self.last_done)
            self.mean_s, self.last_done = 0.8 * self.mean_s + 0.2 * took, now

    async def _refuse(self, scope, receive, send, status: int, detail: str, **extra):
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": detail}, status, headers={"Connection": "close", **extra})(scope, receive, send)
        log_refusal(scope, status, detail)
        return status

    async def _guarded(self, scope, receive, send) -> int | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit_mb = f"{self.max_bytes / 1e6:g} MB"

        def refuse(status: int, detail: str, **extra):
            return self._refuse(scope, receive, send, status, detail, **extra)

        if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return await refuse(415, "POST /analyze takes multipart/form-data with the image in the `image` field")
        if self.token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return await refuse(401, "missing bearer token: send `Authorization: Bearer <token>`",
                                    **{"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return await refuse(401, "wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        try:
            length = int(headers.get("content-length", "-1"))
        except ValueError:
            length = -1
        if length > self.max_bytes:
            return await refuse(413, f"upload of {length / 1e6:.1f} MB is larger than the limit of {limit_mb} "
                                     "(fracdata serve --max-upload-mb)")
        allowed = self.read_timeout + self.max_bytes / MIN_RATE
        seen, deadline, done = 0, time.monotonic() + allowed, False

        async def counted():
            from fastapi import HTTPException

            nonlocal seen, done
            if done:  # the body is in: what follows (a disconnect) is not the client's to hurry
                return await receive()
            wait = min(self.read_timeout, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.001))
            except asyncio.TimeoutError:
                why = (f"sent nothing for {self.read_timeout:g} s" if wait >= self.read_timeout else
                       f"did not send the body within {allowed:.0f} s")
                raise HTTPException(408, f"the client {why} (fracdata serve --read-timeout {self.read_timeout:g}; "
                                         f"an upload must average {MIN_RATE // 1000} kB/s)",
                                    headers={"Connection": "close"}) from None
            seen += len(message.get("body", b""))
            done = message["type"] != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:  # chunked upload without Content-Length
                raise HTTPException(413, f"upload is larger than the limit of {limit_mb} (fracdata serve --max-upload-mb)")
            return message

        seen_status = []
        await self.app(scope, counted, logged(scope, send, seen_status))
        return seen_status[0] if seen_status else None


def logged(scope, send, seen: list | None = None):
    """`send`, logging a response of status >= 400 as a refusal (with the JSON `detail` it sends)."""
    state = {"status": None, "body": b""}

    async def wrapped(message):
        await send(message)  # first: the client's answer never waits for the log
        if message["type"] == "http.response.start":
            state["status"] = message["status"]
            if seen is not None:
                seen.append(message["status"])
        elif message["type"] == "http.response.body" and (state["status"] or 0) >= 400:
            state["body"] += message.get("body", b"")[:2000]
            if not message.get("more_body", False):
                try:
                    detail = json.loads(state["body"]).get("detail")
                except (ValueError, AttributeError):
                    detail = None
                log_refusal(scope, state["status"], detail if isinstance(detail, str) else
                            state["body"][:200].decode("utf-8", "replace"))
    return wrapped


def guarded_protocol(read_timeout: float):
    """uvicorn's HTTP protocol class ('auto': httptools if installed, else h11) with a deadline on
    request headers: a connection whose next request's headers are not complete `read_timeout`
    seconds after it opened (or after its last response) is closed."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base = import_from_string(HTTP_PROTOCOLS["auto"])

    class HeaderDeadline(base):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def _arm(self):
            self._before = self.cycle  # a new request replaces the cycle once its headers are complete
            self._header_timer = self.loop.call_later(read_timeout, self._expire)

        def _expire(self):
            if self.cycle is self._before and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            self._header_timer.cancel()
            self._arm()

        def connection_lost(self, exc):
            self._header_timer.cancel()
            super().connection_lost(exc)

    return HeaderDeadline

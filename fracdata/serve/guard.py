"""What `fracdata serve` checks before a request reaches the app, and how long it waits for one.

`Guard` (pure ASGI middleware) answers POST /analyze from its headers alone, before one byte of
the body is read: 415 not multipart, 401 missing or wrong bearer token (a stranger cannot make
the server read 32 MB), 413 a Content-Length over the limit. While the body streams it counts it
(413 for a chunked body over the limit) and times it: 408 when the client sends nothing for
`read_timeout` seconds, or has not sent the whole body by its deadline (read_timeout + the limit
at MIN_RATE: 32 MB at 100 kB/s -> 350 s), so a client that trickles cannot hold a worker.

Headers never reach an ASGI app until they are complete, so their deadline lives in the HTTP
protocol: `guarded_protocol` wraps uvicorn's and closes a connection whose request headers are
not complete `read_timeout` seconds after it opened or after its last response (uvicorn's own
keep-alive timeout is cancelled by any byte, so one byte every few seconds kept a connection
forever).
"""

from __future__ import annotations

import asyncio
import hmac
import time

MIN_RATE = 100_000  # bytes/s a client must average over a whole upload


class Guard:
    def __init__(self, app, max_bytes: int, token: str | None, read_timeout: float = 30.0):
        self.app, self.max_bytes, self.token, self.read_timeout = app, max_bytes, token, read_timeout

    async def __call__(self, scope, receive, send):
        from starlette.responses import JSONResponse

        if scope["type"] != "http" or scope["path"] != "/analyze" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit_mb = f"{self.max_bytes / 1e6:g} MB"

        def refuse(status: int, detail: str, **extra):
            return JSONResponse({"detail": detail}, status, headers={"Connection": "close", **extra})(scope, receive, send)

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

        return await self.app(scope, counted, send)


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

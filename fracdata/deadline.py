"""A deadline for one whole HTTP request (connect, send, headers, body) in the openai SDK's client.

httpx's timeouts are per operation: a read timeout of 3 s waits at most 3 s for the next bytes,
so a server that sends one byte a second keeps a request alive for as long as it likes (45 s with
`--timeout 3` was measured). Here every network operation of a request gets at most the time
left until `start + seconds`, and none may start after it: the request ends with httpx's own
ReadTimeout / WriteTimeout / ConnectTimeout (the SDK's APITimeoutError) once the deadline
passes, whatever the server does. Each attempt (the SDK's retries included) gets its own
deadline, set by an httpx request hook; the hook and the operations run in one thread (sync) or
one task (async), so a context variable carries it.

httpx does not let a caller replace its connection pool's network backend, so `wrap` swaps the
pool's `_network_backend` (httpcore 1.x). tests/test_hostile_io.py holds a trickling server to this.
"""

from __future__ import annotations

import contextvars
import time

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("fracdata_http_deadline", default=None)


def _left(timeout: float | None, exc):
    """The time an operation may take: its own timeout, cut to what is left of the deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("the whole request took longer than its deadline")
    return left if timeout is None else min(timeout, left)


def _backends():
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, s):
            self._s = s

        def read(self, max_bytes, timeout=None):
            return self._s.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

        def write(self, buffer, timeout=None):
            return self._s.write(buffer, _left(timeout, httpcore.WriteTimeout))

        def close(self):
            self._s.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return Stream(self._s.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info):
            return self._s.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self, b):
            self._b = b

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            return Stream(self._b.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout), local_address,
                                              socket_options))

        def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return Stream(self._b.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options))

        def sleep(self, seconds):
            self._b.sleep(seconds)

    class AsyncStream(httpcore.AsyncNetworkStream):
        def __init__(self, s):
            self._s = s

        async def read(self, max_bytes, timeout=None):
            return await self._s.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

        async def write(self, buffer, timeout=None):
            return await self._s.write(buffer, _left(timeout, httpcore.WriteTimeout))

        async def aclose(self):
            await self._s.aclose()

        async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return AsyncStream(await self._s.start_tls(ssl_context, server_hostname,
                                                       _left(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info):
            return self._s.get_extra_info(info)

    class AsyncBackend(httpcore.AsyncNetworkBackend):
        def __init__(self, b):
            self._b = b

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            return AsyncStream(await self._b.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                                         local_address, socket_options))

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return AsyncStream(await self._b.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout),
                                                                 socket_options))

        async def sleep(self, seconds):
            await self._b.sleep(seconds)

    return Backend, AsyncBackend


def http_client(seconds: float, asynchronous: bool = False):
    """The SDK's default httpx client (its limits, redirects, proxies from the environment) with
    every request bounded by `seconds` in all."""
    import openai

    Backend, AsyncBackend = _backends()
    if asynchronous:
        async def start(request):
            _DEADLINE.set(time.monotonic() + seconds)
        client = openai.DefaultAsyncHttpxClient(timeout=seconds, event_hooks={"request": [start]})
    else:
        def start(request):
            _DEADLINE.set(time.monotonic() + seconds)
        client = openai.DefaultHttpxClient(timeout=seconds, event_hooks={"request": [start]})
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if transport is None or pool is None:
            continue
        if not hasattr(pool, "_network_backend"):
            raise RuntimeError("httpcore's connection pool has no _network_backend: whole-request deadlines "
                               "need httpcore 1.x")
        pool._network_backend = (AsyncBackend if asynchronous else Backend)(pool._network_backend)
    return client

"""A polite HTTP client for the archives: per-service rate limit, identification, retries.

- Rate limit: requests to one service start at least 1/rate s apart (a minimum interval, not a
  burst window: 3 requests/s is one every 333 ms). Every attempt counts, retries included.
- Identification: `User-Agent: fracdata/<version> (fracdata harvest; mailto:<email>)` and the
  `From: <email>` header (RFC 9110 §10.1.2: the address of the person responsible for a robot).
- Retries: 429 and 5xx, dropped connections and timeouts are retried up to `retries` times.
  A `Retry-After` (seconds or an HTTP date) is waited out exactly, and the whole service pauses
  for it, since the limit it reports is the client's, not the request's; without one the wait
  is exponential with jitter (`backoff_s`: 0.5-1 s, 1-2 s, 2-4 s, ...). A Retry-After longer
  than `max_wait` is an error: better to stop and say so than to hang for hours.
- Deadlines: `timeout` bounds a whole request (connect + every read), not each socket read,
  and a body larger than `max_bytes` is refused while it streams in.
Other 4xx answers are not retried: asking again would get the same answer.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.client import HTTPException

from fracdata import __version__
from fracdata.llm.ratelimit import backoff_s  # the HTTP clients' one backoff rule

RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 16


class FetchError(Exception):
    """A request that failed for good: `status` is the HTTP status, or None (network, size)."""

    def __init__(self, url: str, status: int | None, detail: str):
        super().__init__(f"{url}: {detail}")
        self.url, self.status, self.detail = url, status, detail


@dataclass
class Service:
    name: str  # "europepmc", "pmc"
    base: str  # base URL, no trailing slash
    rate: float  # requests per second (every attempt counts)
    next_at: float = 0.0  # monotonic time the next request may start
    stats: Counter = field(default_factory=Counter)  # requests, bytes, retry:<why>, waited_s


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: '120' -> 120.0; an HTTP date -> seconds until it."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Client:
    def __init__(self, email: str, services: list[Service], timeout: float = 60.0, retries: int = 5,
                 max_wait: float = 600.0, sleep=time.sleep, clock=time.monotonic):
        self.email, self.timeout, self.retries, self.max_wait = email, timeout, retries, max_wait
        self.services = {s.name: s for s in services}
        self.sleep, self.clock = sleep, clock
        self.headers = {"User-Agent": f"fracdata/{__version__} (fracdata harvest; mailto:{email})", "From": email}

    def url(self, service: str, path: str, params: dict | None = None) -> str:
        base = self.services[service].base
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{base}/{path.lstrip('/')}{query}" if path else f"{base}/{query}"

    def _wait_turn(self, svc: Service) -> None:
        now = self.clock()
        if svc.next_at > now:
            svc.stats["waited_s"] += svc.next_at - now
            self.sleep(svc.next_at - now)
        svc.next_at = max(self.clock(), svc.next_at) + 1.0 / svc.rate

    def _once(self, url: str, max_bytes: int) -> bytes:
        deadline = self.clock() + self.timeout
        req = urllib.request.Request(url, headers=self.headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(url, resp.status, f"{declared} bytes > the {max_bytes}-byte limit")
            parts, size = [], 0
            while chunk := resp.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(url, resp.status, f"more than the {max_bytes}-byte limit")
                if self.clock() > deadline:
                    raise TimeoutError(f"no complete answer within {self.timeout:g} s")
                parts.append(chunk)
            return b"".join(parts)

    def get(self, service: str, url: str, max_bytes: int = 256 * 2**20) -> bytes:
        """The body of a 200 answer, or FetchError after the retries (see the module docstring)."""
        svc = self.services[service]
        for attempt in range(self.retries + 1):
            self._wait_turn(svc)
            svc.stats["requests"] += 1
            try:
                body = self._once(url, max_bytes)
                svc.stats["bytes"] += len(body)
                return body
            except urllib.error.HTTPError as e:
                status, why = e.code, f"HTTP {e.code}"
                wait = retry_after_s(e.headers.get("Retry-After") if e.headers else None)
                e.close()
                if status not in RETRY_STATUS:
                    raise FetchError(url, status, why) from None
            except FetchError:
                raise
            except (urllib.error.URLError, HTTPException, OSError) as e:  # refused, reset, timed out
                status, why, wait = None, f"{type(e).__name__}: {getattr(e, 'reason', e)}", None
            if attempt == self.retries:
                raise FetchError(url, status, f"{why} after {attempt + 1} attempts")
            svc.stats[f"retry:{status or 'network'}"] += 1
            if wait is None:
                wait = backoff_s(attempt)
            elif wait > self.max_wait:
                raise FetchError(url, status, f"{why}: Retry-After {wait:.0f} s exceeds --max-wait {self.max_wait:g} s")
            # the pause covers the whole service: its next request starts after the wait
            svc.next_at = max(svc.next_at, self.clock() + wait)
        raise AssertionError("unreachable")

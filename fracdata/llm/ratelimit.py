"""Requests-per-minute and tokens-per-minute limits, Retry-After cool-downs, jittered backoff.

One limiter is shared by all workers of the event loop (single-threaded, so no locks): a
request may start when the last 60 s hold fewer than `rpm` starts and fewer than `tpm`
estimated tokens. A 429's Retry-After pauses every worker, not just the one that got it,
because the limit it reports is the account's, not the connection's. `backoff_s` is the one
backoff rule of fracdata's HTTP clients (the labeller here, harvest/http.py for the article services).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, rpm: float | None = None, tpm: float | None = None, clock=time.monotonic):
        self.rpm, self.tpm, self.clock = rpm, tpm, clock
        self._starts: deque[tuple[float, int]] = deque()  # (start time, estimated tokens)
        self._tokens = 0
        self._pause_until = 0.0
        self.waited_s = 0.0  # total time workers spent waiting here (reported)

    def cool_down(self, seconds: float) -> None:
        self._pause_until = max(self._pause_until, self.clock() + seconds)

    def _delay(self, tokens: int) -> float:
        now = self.clock()
        while self._starts and now - self._starts[0][0] >= WINDOW_S:
            self._tokens -= self._starts.popleft()[1]
        wait = max(0.0, self._pause_until - now)
        oldest_expiry = (self._starts[0][0] + WINDOW_S - now) if self._starts else 0.0
        if self.rpm is not None and len(self._starts) >= self.rpm:
            wait = max(wait, oldest_expiry)
        # A request bigger than the whole TPM may start alone in an empty window, or never.
        if self.tpm is not None and self._starts and self._tokens + tokens > self.tpm:
            wait = max(wait, oldest_expiry)
        return wait

    async def acquire(self, tokens: int) -> None:
        while (wait := self._delay(tokens)) > 0:
            self.waited_s += wait
            await asyncio.sleep(wait)
        self._starts.append((self.clock(), tokens))
        self._tokens += tokens


def backoff_s(attempt: int, base: float = 1.0, cap: float = 60.0, rng=random.random) -> float:
    """Exponential backoff with 'equal jitter': attempt 0 -> 0.5-1 x base, 3 -> 4-8 x base, <= cap.

    Half the delay is fixed (so a retry never comes back at once) and half random (so workers
    that failed together do not retry together).
    """
    d = min(cap, base * 2 ** attempt)
    return d / 2 + rng() * d / 2

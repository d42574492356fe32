"""The moving-window rate limiter in process memory: `limits`' `MovingWindowRateLimiter` answers,
without its async `MemoryStorage`.

That storage starts an expiry sweep after a hit whenever none is running, and each sweep hops to a
thread (`asyncio.to_thread`) per key: under load, a task and a thread hop per request. Measured
under `make bench` (fast): a service-key limit cost ~360 µs per session with it, and this window
took 1451 -> 1132 µs per session (bench/README.md, measured decisions). Here a key's hits are a
deque of their times: a hit drops what left the window and appends, and keys idle past every
window are swept once per `SWEEP_INTERVAL_S`, on the loop, in one pass. Redis keeps `limits`'
own storage.
"""

from __future__ import annotations

import time
from collections import deque

from limits import RateLimitItem
from limits.util import WindowStats

SWEEP_INTERVAL_S = 10.0


class MemoryMovingWindow:
    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._longest_window_s = 0.0
        self._swept_at = time.time()

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Count `cost` hits unless they would pass the limit (then count none): True if
        counted."""
        now = time.time()
        hits = self._window(item, identifiers, now)
        if len(hits) + cost > item.amount:
            return False
        hits.extend([now] * cost)
        self._sweep_now_and_then(now)
        return True

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Whether `cost` more hits would be counted; counts nothing."""
        return len(self._window(item, identifiers, time.time())) + cost <= item.amount

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        hits = self._window(item, identifiers, now)
        started = hits[0] if hits else now
        return WindowStats(started + item.get_expiry(), item.amount - len(hits))

    def _window(
        self, item: RateLimitItem, identifiers: tuple[str, ...], now: float
    ) -> deque[float]:
        """The key's hits still in the window, oldest first."""
        window_s = item.get_expiry()
        self._longest_window_s = max(self._longest_window_s, window_s)
        hits = self._hits.setdefault(item.key_for(*identifiers), deque())
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        return hits

    def _sweep_now_and_then(self, now: float) -> None:
        # Without it every address ever seen would keep its key: a slow leak.
        if now - self._swept_at < SWEEP_INTERVAL_S:
            return
        self._swept_at = now
        idle_since = now - self._longest_window_s
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= idle_since]:
            del self._hits[key]

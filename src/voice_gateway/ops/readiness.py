"""Readiness, asked of LiveKit at most once a second however often it is probed.

`/readyz` is public (no credentials, no rate limits), and each check is a LiveKit ListRooms. So a
check's outcome is reused for `REUSE_S`, and probes that arrive while one is in flight wait for it
and share its outcome (single flight): a flood of probes costs LiveKit one call a second, and a
LiveKit outage or recovery still shows within about a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import anyio

from ..errors import GatewayError

REUSE_S = 1.0  # how long one check's outcome answers every probe


class Readiness:
    def __init__(self, check: Callable[[], Awaitable[None]], reuse_s: float = REUSE_S) -> None:
        self._check = check
        self._reuse_s = reuse_s
        self._lock = anyio.Lock()  # the one check in flight; waiters then find its outcome
        self._checked_at = -math.inf
        self._failure: GatewayError | None = None

    async def failure(self) -> GatewayError | None:
        """Why the gateway is not ready (LiveKit's failure), or None when it is."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._reuse_s:
                self._failure = await self._outcome()
                self._checked_at = time.monotonic()
            return self._failure

    async def _outcome(self) -> GatewayError | None:
        try:
            await self._check()  # bounded by the LiveKit deadline, so the lock is too
        except GatewayError as exc:
            return exc
        return None

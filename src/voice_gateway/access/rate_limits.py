"""Abuse limits: per end user, per client address, and per service key only when configured.

Counted with a moving window (exact, and it gives an exact Retry-After): in process memory by
default (`memory_window.py`, `limits`' answers without its memory storage's cost), in Redis by the
`limits` library when `VOICE_GATEWAY_REDIS_URL` is set so all replicas share the counters.
Service keys belong to trusted backends and load testers, so they are unlimited unless
`VOICE_GATEWAY_RATE_LIMIT_SERVICE` caps them. Every refused credential counts against its address,
so guessing keys is as limited as using them; so does every webhook whose signature does not
verify, and an address over its limit gets 429 before its next webhook is verified at all. When
the gateway runs open (`dev`, no authentication configured) nothing is limited.

The client address is the ASGI `client`: the TCP peer, unless the server was told to trust a proxy
(see `VOICE_GATEWAY_TRUSTED_PROXIES` in cli.py). A request header alone never changes it.

When the counter store fails (Redis down or slow), requests are let through, the failure is logged
once, and the store is left alone for `STORE_RETRY_S`: the limits protect capacity, authentication
still stands, and an outage of the store must not become an outage (or a slowdown, or a log flood)
of the gateway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Protocol, TypeVar

import anyio
import anyio.lowlevel
import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.util import WindowStats

from ..errors import TooManyRequests
from ..fail_open import FailOpen
from ..settings import Settings
from .caller import Caller, CallerKind
from .memory_window import MemoryMovingWindow

STORE_TIMEOUT_S = 0.5  # a slower counter store costs one request this much, then is skipped
STORE_RETRY_S = 5.0  # how long a failed store is skipped before it is asked again
KEY_PREFIX = "voice-gateway"
logger = logging.getLogger("voice_gateway.rate_limits")  # pinned: logs know it by this name
T = TypeVar("T")


class MovingWindow(Protocol):
    """What RateLimits asks of a limiter: `limits`' MovingWindowRateLimiter, or the memory one."""

    async def hit(self, item: limits.RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def test(self, item: limits.RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def get_window_stats(
        self, item: limits.RateLimitItem, *identifiers: str
    ) -> WindowStats: ...


class RateLimits:
    def __init__(
        self,
        limiter: MovingWindow,
        *,
        per_user: Sequence[limits.RateLimitItem],
        per_address: Sequence[limits.RateLimitItem],
        per_service: Sequence[limits.RateLimitItem],
        shared: bool,
    ) -> None:
        self._limiter = limiter
        self._per_user = per_user
        self._per_address = per_address
        self._per_service = per_service
        # Only a shared store can fail or be slow. The memory window cannot, and a deadline per
        # count (a cancel scope) was a tenth of a session's CPU (bench/README.md, measured
        # decisions).
        self._store = (
            FailOpen(
                logger,
                "rate-limit store",
                "requests go unlimited",
                (StorageError,),
                timeout_s=STORE_TIMEOUT_S,
                retry_s=STORE_RETRY_S,
            )
            if shared
            else None
        )

    async def admit(self, caller: Caller, address: str) -> None:
        """Count a request; TooManyRequests (429, Retry-After) once a limit is used up."""
        if caller.kind is CallerKind.SERVICE:
            await self._count(self._per_service, "service key", caller.key_id or "")
        elif caller.kind is CallerKind.END_USER:
            await self._count(self._per_address, "address", address)
            await self._count(self._per_user, "user", caller.subject or "")
        # ANONYMOUS: the gateway runs open (`dev` only), with full rights and no limits.

    async def count_refusal(self, address: str) -> None:
        """A request refused for its credentials still counts against its address."""
        await self._count(self._per_address, "address", address)

    async def check_address(self, address: str) -> None:
        """429 if the address has used up its limit; counts nothing (a webhook asks this before
        spending a verification on it)."""
        for item in self._per_address:
            test = partial(self._limiter.test, item, "address", address)
            if not await self._guarded(test, default=True):
                raise await self._too_many(item, "address", address)

    async def _count(self, items: Sequence[limits.RateLimitItem], scope: str, who: str) -> None:
        for item in items:
            if not await self._guarded(partial(self._limiter.hit, item, scope, who), default=True):
                raise await self._too_many(item, scope, who)

    async def _too_many(self, item: limits.RateLimitItem, scope: str, who: str) -> TooManyRequests:
        stats = await self._guarded(
            partial(self._limiter.get_window_stats, item, scope, who), default=None
        )
        retry_after = max(1, math.ceil(stats.reset_time - time.time())) if stats else 1
        return TooManyRequests(
            f"Too many requests for this {scope}: at most {item}; retry in {retry_after} s",
            retry_after_s=retry_after,
        )

    async def _guarded(self, call: Callable[[], Awaitable[T]], default: T) -> T:
        if self._store is None:
            return await call()
        return await self._store.call(call, default)


@asynccontextmanager
async def open_rate_limits(settings: Settings) -> AsyncIterator[RateLimits]:
    rates = {
        "per_user": _rates(settings.rate_limit_user),
        "per_address": _rates(settings.rate_limit_address),
        "per_service": _rates(settings.rate_limit_service),
    }
    if settings.redis_url is None:
        yield RateLimits(MemoryMovingWindow(), **rates, shared=False)
        return
    storage = _storage(settings)
    try:
        yield RateLimits(MovingWindowRateLimiter(storage), **rates, shared=True)
    finally:
        await _close(storage)


async def check_store(settings: Settings) -> bool:
    """Whether the counter store answers (always, in memory)."""
    storage = _storage(settings)
    try:
        with anyio.move_on_after(STORE_TIMEOUT_S * 4):
            return await storage.check()
        return False
    finally:
        await _close(storage)


def _rates(text: str) -> list[limits.RateLimitItem]:
    return limits.parse_many(text) if text else []


def _storage(settings: Settings) -> Storage:
    if settings.redis_url is None:
        return MemoryStorage()
    url = "async+" + settings.redis_url.get_secret_value()
    storage = storage_from_string(
        url,
        wrap_exceptions=True,
        key_prefix=KEY_PREFIX,
        connect_timeout=STORE_TIMEOUT_S,
        stream_timeout=STORE_TIMEOUT_S,
    )
    assert isinstance(storage, Storage)
    return storage


async def _close(storage: Storage) -> None:
    if isinstance(storage, MemoryStorage) and storage.timer and not storage.timer.done():
        storage.timer.cancel()  # its expiry sweep; the process may outlive this app (tests)
    # `limits` has no close of its own: disconnect the Redis client's pool (coredis) ourselves.
    pool = getattr(
        getattr(getattr(storage, "bridge", None), "storage", None), "connection_pool", None
    )
    if pool is not None:
        pool.disconnect()
        await anyio.lowlevel.checkpoint()  # the transports finish closing on the next turn

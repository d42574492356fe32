"""A shared store (Redis) asked so that its failure never becomes the gateway's: a call past its
deadline or failing is answered with a default, logged once, and the store is left alone for a
while before it is asked again. The rate limits and the session caps use it: both protect capacity,
and an outage of their store must not become an outage (or a slowdown, or a log flood) of the
gateway."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


class FailOpen:
    def __init__(
        self,
        logger: logging.Logger,
        store: str,
        consequence: str,
        errors: tuple[type[Exception], ...],
        *,
        timeout_s: float,
        retry_s: float,
    ) -> None:
        self._logger = logger
        self._failed = f"{store} failed (%s); {consequence} for the next %g s"
        self._errors: tuple[type[Exception], ...] = (*errors, TimeoutError)
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._down_until = 0.0

    async def call(self, call: Callable[[], Awaitable[T]], default: T) -> T:
        """`call`'s answer, or `default` while the store fails."""
        if time.monotonic() < self._down_until:
            return default
        try:
            with anyio.fail_after(self._timeout_s):
                return await call()
        except self._errors as exc:
            self._down_until = time.monotonic() + self._retry_s
            self._logger.warning(self._failed, type(exc).__name__, self._retry_s)
            return default

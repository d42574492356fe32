"""Waiting for a condition that another thread or loop makes true."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout_s`. Polled, not an
    event: what it watches changes on other threads and loops (the stand-in's, uvicorn's)."""
    with anyio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def poll_until(
    check: Callable[[], Awaitable[T]], timeout_s: float, interval_s: float = 0.05
) -> T:
    """Awaits `check` until its answer is truthy and returns that answer; fails the test after
    `timeout_s`. For what only a call can tell: LiveKit's API, the gateway's /metrics."""
    with anyio.fail_after(timeout_s):
        while not (answer := await check()):  # noqa: ASYNC110
            await anyio.sleep(interval_s)
    return answer

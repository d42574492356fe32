"""Waiting for a condition that another thread or loop makes true."""

from __future__ import annotations

from collections.abc import Callable

import anyio


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout_s`. Polled, not an
    event: what it watches changes on other threads and loops (the stand-in's, uvicorn's)."""
    with anyio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)

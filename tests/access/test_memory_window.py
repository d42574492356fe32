"""The in-memory moving window answers as `limits`' MovingWindowRateLimiter does."""

from __future__ import annotations

import time

import anyio
import limits
import pytest

from voice_gateway.access import memory_window
from voice_gateway.access.memory_window import MemoryMovingWindow

TWO_PER_SECOND = limits.parse("2/second")


async def test_hits_past_the_limit_are_refused_and_not_counted() -> None:
    window = MemoryMovingWindow()

    counted = [await window.hit(TWO_PER_SECOND, "user", "nate") for _ in range(3)]
    stats = await window.get_window_stats(TWO_PER_SECOND, "user", "nate")

    assert counted == [True, True, False]
    assert stats.remaining == 0
    assert time.time() < stats.reset_time <= time.time() + 1


async def test_a_hit_is_allowed_again_once_the_oldest_left_the_window() -> None:
    window = MemoryMovingWindow()
    for _ in range(2):
        await window.hit(TWO_PER_SECOND, "address", "10.0.0.1")
    assert not await window.test(TWO_PER_SECOND, "address", "10.0.0.1")

    await anyio.sleep(1.05)

    assert await window.test(TWO_PER_SECOND, "address", "10.0.0.1")
    assert await window.hit(TWO_PER_SECOND, "address", "10.0.0.1")


async def test_keys_are_counted_apart() -> None:
    window = MemoryMovingWindow()
    for _ in range(2):
        await window.hit(TWO_PER_SECOND, "user", "nate")

    assert await window.hit(TWO_PER_SECOND, "user", "ada")
    stats = await window.get_window_stats(TWO_PER_SECOND, "user", "grace")
    assert stats.remaining == 2


async def test_idle_keys_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_window, "SWEEP_INTERVAL_S", 0.0)
    window = MemoryMovingWindow()
    await window.hit(TWO_PER_SECOND, "address", "10.0.0.1")
    await anyio.sleep(1.05)

    await window.hit(TWO_PER_SECOND, "address", "10.0.0.2")

    assert list(window._hits) == [TWO_PER_SECOND.key_for("address", "10.0.0.2")]

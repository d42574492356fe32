"""Once started, the heap start-up made is frozen and the young generation is collected at
`YOUNG_GENERATION_THRESHOLD` objects; the older generations keep CPython's thresholds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from voice_gateway.ops.server import YOUNG_GENERATION_THRESHOLD, settle_heap


@pytest.fixture
def heap_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("heap_restored")
def test_settling_freezes_the_heap_and_collects_the_young_generation_less_often() -> None:
    _, middle, oldest = gc.get_threshold()

    settle_heap()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, oldest)

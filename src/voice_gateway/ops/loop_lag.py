"""The event-loop lag monitor: a blocking call that slips in is measured and logged, not guessed.

A task asks to sleep for an interval and measures how late it wakes. On a healthy loop the delay
is timer noise; anything that blocks the loop (a sync SDK call, file I/O) shows up as lag.
"""

from __future__ import annotations

import logging

import anyio
from prometheus_client import Histogram

logger = logging.getLogger("voice_gateway.loop_lag")  # pinned: logs know it by this name


async def watch_loop_lag(interval_s: float, warning_s: float, lag: Histogram) -> None:
    """Run until cancelled; one cheap sample per interval."""
    while True:
        late_by = await measure_once(interval_s)
        lag.observe(late_by)
        if late_by >= warning_s:
            logger.warning(
                "event loop lagged %.3f s behind schedule: something blocked it",
                late_by,
                extra={"loop_lag_s": round(late_by, 4)},
            )


async def measure_once(interval_s: float) -> float:
    asked_at = anyio.current_time()
    await anyio.sleep(interval_s)
    return max(0.0, anyio.current_time() - asked_at - interval_s)

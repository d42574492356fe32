"""The server's background check that closes rooms nobody is in (server.go backgroundWorker)."""

from __future__ import annotations

import asyncio
import logging
import time

from .store import RoomStore

CHECK_INTERVAL_S = 1.0
logger = logging.getLogger(__name__)


async def close_idle_rooms_forever(store: RoomStore, interval_s: float = CHECK_INTERVAL_S) -> None:
    while True:
        await asyncio.sleep(interval_s)
        closed = store.close_idle_rooms(time.time())
        if closed:
            logger.debug("closed %d idle room(s)", len(closed))

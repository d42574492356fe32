"""Enforces `expires_at`: deletes the gateway's session rooms once their session has expired,
and rooms a join re-created after their session was ended (endings.py).

A token's TTL does not end a live session (LiveKit refreshes connected clients' tokens), so the
gateway ends it: a background task of the app's lifespan lists LiveKit's rooms every
`VOICE_GATEWAY_REAPER_INTERVAL_S` and deletes the expired sessions among them. It only ever
touches rooms whose name and metadata make them the gateway's (`record_of`), and it is safe with
several replicas running it at once: a room another replica deleted first is simply gone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
from livekit import api

from ..errors import GatewayError
from ..livekit.rooms import LiveKitRooms, RoomNotFound
from ..ops.metrics import Metrics
from ..vocabulary import is_session_room_name
from . import endings
from .record import SessionRecord, record_of

logger = logging.getLogger("voice_gateway.reaper")  # pinned: logs know it by this name


class ExpiryReaper:
    def __init__(
        self,
        rooms: LiveKitRooms,
        prefix: str,
        metrics: Metrics,
        token_ttl_s: int = endings.REFRESHED_TOKEN_VALIDITY_S,
    ) -> None:
        self._rooms = rooms
        self._prefix = prefix
        self._metrics = metrics
        self._token_ttl_s = token_ttl_s  # how long an end mark must last (endings.py)

    async def sweep(self) -> int:
        """One pass: the number of expired sessions this pass ended."""
        try:
            rooms = await self._rooms.list_all()
        except GatewayError as exc:
            self._metrics.reaper_sweeps.labels("failed").inc()
            logger.warning("expiry reaper could not list rooms: %s", exc.detail)
            return 0
        ended, now = 0, datetime.now(UTC)
        # Ended before and re-created by a join since: not a second end of the session.
        revived = endings.revived_room_names(rooms, self._prefix)
        for room_name in revived:
            await endings.delete_revived(self._rooms, self._metrics, room_name, "sweep")
        for room_name, record in self._sessions(rooms):
            if room_name not in revived and record.has_expired(now):
                ended += await self._end(room_name, record)
        self._metrics.reaper_sweeps.labels("ok").inc()
        return ended

    def _sessions(self, rooms: list[api.Room]) -> list[tuple[str, SessionRecord]]:
        sessions = []
        for room in rooms:
            if not is_session_room_name(room.name, self._prefix):
                continue
            record = record_of(room.name, room.metadata, self._prefix)
            if record is not None:
                sessions.append((room.name, record))
        return sessions

    async def _end(self, room_name: str, record: SessionRecord) -> int:
        try:
            # First, as DELETE does: a token refreshed before the end could revive the room.
            await endings.mark_ended(self._rooms, self._prefix, record, self._token_ttl_s)
            await self._rooms.delete(room_name)
        except RoomNotFound:
            logger.debug("expired session %s was already gone", record.session_id)
            return 0
        except GatewayError as exc:
            logger.warning("could not end expired session %s: %s", record.session_id, exc.detail)
            return 0
        self._metrics.sessions_ended.labels("expired").inc()
        logger.info(
            "session %s expired at %s; room %s deleted",
            record.session_id,
            record.expires_at.isoformat(),
            room_name,
        )
        return 1


async def sweep_forever(reaper: ExpiryReaper, interval_s: float) -> None:
    """One pass every `interval_s`, until the lifespan's task group cancels it (mid-call too)."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await reaper.sweep()
        except Exception:  # one bad pass must not end enforcement for the process's lifetime
            logger.exception("expiry reaper pass failed")

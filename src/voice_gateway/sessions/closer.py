"""Ends sessions: every end has exactly one reason, counted and logged once, however many
replicas (or ways of ending: DELETE, the reaper, a time limit, LiveKit closing the room) reach it.

The end mark decides (endings.py): the attempt whose claim the standing mark holds is the one that
ended the session, and only it counts the end. Marking comes before deleting, so an end that fails
half-way leaves a marked room, which the next sweep deletes as revived; the end is not counted twice
when a caller retries.

Every end frees the session's slot under the caps (admission.py), whatever its reason, whether
LiveKit had closed the room already, and also when the session had ended before: releasing a
slot already free changes nothing, so a second end path reaching the session is harmless.

`session.ended` is emitted here and only here: by the one attempt that ended the session, so
every end, whatever path reached it, sends exactly one. Just before it, a `session.user_left` /
`session.agent_left` for whoever was last observed in the room: LiveKit reports those leaves once
the room is gone, when the webhook intake no longer sends events for it (webhook_intake.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ..livekit.rooms import LiveKitRooms, RoomNotFound
from ..ops.metrics import Metrics
from . import endings, events, idempotency
from .admission import Admission
from .endings import EndReason
from .event_outbox import EventOutbox
from .record import SessionRecord

logger = logging.getLogger("voice_gateway.sessions")  # pinned: logs know it by this name


class SessionCloser:
    def __init__(
        self,
        rooms: LiveKitRooms,
        prefix: str,
        metrics: Metrics,
        token_ttl_s: int,
        admission: Admission,
        outbox: EventOutbox,
    ) -> None:
        self._rooms = rooms
        self._outbox = outbox
        self._admission = admission
        self._prefix = prefix
        self._metrics = metrics
        self._token_ttl_s = token_ttl_s  # how long an end mark must last (endings.py)

    async def close(
        self, record: SessionRecord, reason: EndReason, *, room_gone: bool = False
    ) -> bool:
        """End the session for `reason` and delete its room (unless LiveKit already closed it).
        True when this call ended it; False when it had ended before, for the reason then given.
        Raises GatewayError when LiveKit fails; the session then still stands, or is marked and
        its room is deleted by the next sweep, whose reconciliation then frees its slot."""
        room_name = record.room_name(self._prefix)
        prefix, ttl_s = self._prefix, self._token_ttl_s
        # First: a replay of the session's Idempotency-Key must not start it again, whatever
        # ended it (a create that gave up waiting for its agent is retried with its key).
        await idempotency.end_claim(self._rooms, prefix, record)
        ended_here = await endings.mark_ended(self._rooms, prefix, record, ttl_s, reason)
        if ended_here:  # counted now: should the delete fail, a retry finds the mark made
            self._metrics.sessions_ended.labels(reason).inc()
            logger.info("session %s ended: %s; room %s", record.session_id, reason, room_name)
            await self._announce(record, room_name, reason, room_gone)
        if not room_gone:
            await self._delete(room_name)
        await self._admission.release(record.session_id)
        return ended_here

    async def _announce(
        self, record: SessionRecord, room_name: str, reason: EndReason, room_gone: bool
    ) -> None:
        now = datetime.now(UTC)
        # Deleting the room disconnects everyone with this reason; a room LiveKit closed by
        # itself took its participants' leaves with the webhooks that were lost.
        disconnect_reason = None if room_gone else "ROOM_DELETED"
        for leave in events.leaves_at_end(record, room_name, now, disconnect_reason):
            await self._outbox.emit_settled(leave)  # the same instant: ordered before ended
        # The mark is made, so a retry would emit nothing: what Redis does not take now waits
        # in memory until it does (event_outbox.py), rather than failing the end.
        await self._outbox.emit_settled(events.ended(record, room_name, reason, now))

    async def _delete(self, room_name: str) -> None:
        try:
            await self._rooms.delete(room_name)
        except RoomNotFound:
            logger.debug("session room %s was already gone", room_name)

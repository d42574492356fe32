"""LiveKit's webhooks, read for the gateway's sessions: which session an event is about, counted
and logged, and followed: a session room that started after its session ended is deleted
(endings.py); participants joining and leaving are observed (observations.py), an agent leaving
sets its return deadline (agent_watch.py), and a room LiveKit closed by itself ends its session for
the reason its timeouts name (lifecycle.py). The agent's and the user's joins and leaves become
session events for the app (events.py), once observed: a participant event about a room that no
longer holds the session (deleted at its end, or re-created by a stale token's join and deleted
again) is not sent, so none comes after `session.ended`; the end sends the leaves of whoever was
still in the room (closer.py). With Redis, an event Redis did not take is answered 503 (LiveKit
retries, and the webhook is followed again from the start). The signature is checked first, in
`livekit/webhooks.py`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import EventsUnavailable, GatewayError
from ..livekit import api
from ..livekit.webhooks import WebhookInbox
from ..ops.metrics import Metrics
from . import endings, events
from .events import SessionEvent
from .lifecycle import (
    AGENT,
    joined_at,
    reason_livekit_closed,
    seen_joining,
    seen_leaving,
    started_at,
)
from .observations import Change
from .record import Observed, SessionRecord, record_of
from .service import SessionService

logger = logging.getLogger("voice_gateway.webhooks")  # pinned: logs know it by this name

# LiveKit's event names (protocol webhook docs); anything else is counted as "other", so a
# label's values stay few whatever a future server sends.
KNOWN_EVENTS = frozenset(
    {
        "room_started",
        "room_finished",
        "participant_joined",
        "participant_left",
        "participant_connection_aborted",
        "track_published",
        "track_unpublished",
        "egress_started",
        "egress_updated",
        "egress_ended",
        "ingress_started",
        "ingress_ended",
        "agent_job_started",
        "agent_job_ended",
    }
)


@dataclass(frozen=True)
class ReceivedEvent:
    event: str
    session_id: str | None


class WebhookIntake:
    def __init__(
        self,
        inbox: WebhookInbox,
        sessions: SessionService,
        prefix: str,
        metrics: Metrics,
    ) -> None:
        self._inbox = inbox
        self._sessions = sessions
        self._rooms = sessions.rooms
        self._prefix = prefix
        self._metrics = metrics
        self._outbox = sessions.outbox

    async def receive(self, body: bytes, authorization: str | None) -> ReceivedEvent:
        event = await self._inbox.receive(body, authorization)
        room = event.room
        record = record_of(room.name, room.metadata, self._prefix) if room.name else None
        session_id = record.session_id if record else None
        label = event.event if event.event in KNOWN_EVENTS else "other"
        self._metrics.webhook_events.labels(label).inc()
        logger.info(
            "LiveKit webhook %s: session %s, room %s, participant %s",
            event.event,
            session_id or "-",
            room.name or "-",
            event.participant.identity or "-",
        )
        try:
            await self._follow(event, record)
        except EventsUnavailable:
            raise  # answered 503: LiveKit sends the webhook again, and its event is not lost
        except GatewayError as exc:
            # The event itself was received; the sweep finds what it would have changed.
            logger.warning("could not follow %s of room %s: %s", event.event, room.name, exc.detail)
        return ReceivedEvent(event.event, session_id)

    async def _follow(self, event: api.WebhookEvent, record: SessionRecord | None) -> None:
        if event.event == "room_started":
            await self._started(event.room, record)
        elif record is None:
            return
        elif event.event == "participant_joined":
            joined = events.participant_joined(record, event, joined_at(event.participant))
            await self._observed_then_sent(joined, self._joined(event.room, event.participant))
        elif event.event in ("participant_left", "participant_connection_aborted"):
            # Now, not the event's whole-second time: a deadline never comes early.
            now = datetime.now(UTC)
            left = events.participant_left(record, event, now)
            await self._observed_then_sent(left, self._left(event.room, event.participant, now))
        elif event.event == "room_finished":
            reason = reason_livekit_closed(record, _time_of(event))
            await self._sessions.closer.close(record, reason, room_gone=True)

    async def _observed_then_sent(
        self, event: SessionEvent | None, observing: Awaitable[SessionRecord | None]
    ) -> None:
        try:
            holds_session = await observing is not None
        except GatewayError:
            await self._emit(event)  # LiveKit did not say whether the room is still there: sent
            raise
        if holds_session:
            await self._emit(event)

    async def _emit(self, event: SessionEvent | None) -> None:
        if event is not None:  # None: a participant that is neither the agent nor the user
            await self._outbox.emit(event)

    async def _started(self, room: api.Room, record: SessionRecord | None) -> None:
        if await endings.is_over(self._rooms, self._prefix, room):
            await endings.delete_revived(self._rooms, self._metrics, room.name, "webhook")
        elif record is not None:
            self._sessions.agent_watch.watch(record, started_at(room))

    async def _joined(
        self, room: api.Room, participant: api.ParticipantInfo
    ) -> SessionRecord | None:
        if participant.kind == AGENT:
            self._sessions.arrivals.arrived(room.name)  # a create waiting for it answers now

        def change(record: SessionRecord) -> Observed:
            return seen_joining(record.observed, record, participant)

        return await self._observe(room, change)  # the agent came: its timer is dropped

    async def _left(
        self, room: api.Room, participant: api.ParticipantInfo, at: datetime
    ) -> SessionRecord | None:
        def change(record: SessionRecord) -> Observed:
            return seen_leaving(record.observed, record, participant, at)

        return await self._observe(room, change)  # an agent that left: its return is due

    async def _observe(self, room: api.Room, change: Change) -> SessionRecord | None:
        """The session the room holds now, `change` observed; None when it holds none."""
        record = await self._sessions.observations.update(room.name, change, room.sid)
        if record is not None:
            self._sessions.agent_watch.watch(record, started_at(room))
        return record


def _time_of(event: api.WebhookEvent) -> datetime:
    return datetime.fromtimestamp(event.created_at, UTC) if event.created_at else datetime.now(UTC)

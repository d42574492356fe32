"""LiveKit's webhooks, read for the gateway's sessions: which session an event is about, counted
and logged; and a session room LiveKit reports started after its session ended is deleted
(endings.py). The signature is checked first, in `livekit/webhooks.py`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livekit import api

from ..errors import GatewayError
from ..livekit.rooms import LiveKitRooms
from ..livekit.webhooks import WebhookInbox
from ..ops.metrics import Metrics
from . import endings
from .record import record_of

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
        self, inbox: WebhookInbox, rooms: LiveKitRooms, prefix: str, metrics: Metrics
    ) -> None:
        self._inbox = inbox
        self._rooms = rooms
        self._prefix = prefix
        self._metrics = metrics

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
        if event.event == "room_started":
            await self._end_if_revived(room)
        return ReceivedEvent(event.event, session_id)

    async def _end_if_revived(self, room: api.Room) -> None:
        try:
            if await endings.is_over(self._rooms, self._prefix, room):
                await endings.delete_revived(self._rooms, self._metrics, room.name, "webhook")
        except GatewayError as exc:
            # The event itself was received; the sweep finds the revived room on its next pass.
            logger.warning("could not check whether room %s was revived: %s", room.name, exc.detail)

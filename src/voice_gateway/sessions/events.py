"""Session events for the app: what happened to a session, as `{"type", "timestamp", "data"}`
(docs/events.md). Pure functions, no calls: the outbox (event_outbox.py) queues them, delivery
(event_delivery.py) signs and sends them.

`sequence` orders one session's events, and must stay monotonic however many replicas emit them,
without a store they share (Redis comes later, and only when configured). It is therefore derived
from the event itself: the milliseconds from the session's creation to the moment the event is
about, times ten, plus the event type's rank (created before joins before leaves before ended), so
two events of the same millisecond still order. `session.created` is 0. A counter kept in the
room's metadata (like `Observed`) was the other choice; it costs a LiveKit write per event, two
replicas writing at once can hand out one number twice (observations.py), and `session.ended`
often comes when the room is already gone. The price of time: the order is as good as the clocks
(LiveKit's join times and the replicas' clocks, which NTP keeps within milliseconds), and numbers
are increasing, not consecutive.

An event's id (the `webhook-id` a receiver deduplicates on) is derived too: from the session and
what happened, and for a participant event from LiveKit's own webhook id, so LiveKit retrying a
webhook, or two replicas both hearing it, make one event with one id, not two.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from livekit import api

from .endings import EndReason
from .lifecycle import AGENT, is_the_user
from .record import SessionRecord

EventType = Literal[
    "session.created",
    "session.agent_joined",
    "session.user_joined",
    "session.user_left",
    "session.agent_left",
    "session.failed",
    "session.ended",
]
EVENT_TYPES: tuple[EventType, ...] = EventType.__args__  # type: ignore[attr-defined]
# Why a create that waited for its agent failed: its error's code (DESIGN.md's status table).
FailureReason = Literal["agent_timeout", "agent_unavailable"]
_RANK = {event_type: rank for rank, event_type in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class SessionEvent:
    id: str
    type: EventType
    timestamp: datetime
    data: dict[str, Any]

    @property
    def session_id(self) -> str:
        return str(self.data["session_id"])

    @property
    def sequence(self) -> int:
        return int(self.data["sequence"])

    def body(self) -> str:
        """The JSON sent: the same text on every attempt, so every signature is over it."""
        payload = {"type": self.type, "timestamp": _iso(self.timestamp), "data": self.data}
        return json.dumps(payload, separators=(",", ":"))


def created(record: SessionRecord, room_name: str) -> SessionEvent:
    return _event("session.created", record, room_name, record.created_at, {})


def failed(
    record: SessionRecord, room_name: str, reason: FailureReason, at: datetime
) -> SessionEvent:
    return _event("session.failed", record, room_name, at, {"reason": reason})


def ended(record: SessionRecord, room_name: str, reason: EndReason, at: datetime) -> SessionEvent:
    started_at = record.observed.user_joined_at
    times = {
        "end_reason": reason,
        "created_at": _iso(record.created_at),
        "started_at": _iso(started_at) if started_at else None,
        "ended_at": _iso(at),
        # The time the user had: from its first join; None for a session no user joined.
        "duration_s": round((at - started_at).total_seconds(), 3) if started_at else None,
    }
    return _event("session.ended", record, room_name, at, times)


def participant_joined(
    record: SessionRecord, webhook: api.WebhookEvent, at: datetime
) -> SessionEvent | None:
    """`session.agent_joined` or `session.user_joined`; None for anyone else in the room."""
    return _participant_event("joined", record, webhook, at)


def participant_left(
    record: SessionRecord, webhook: api.WebhookEvent, at: datetime
) -> SessionEvent | None:
    """`session.agent_left` or `session.user_left`; None for anyone else in the room."""
    return _participant_event("left", record, webhook, at)


_PARTICIPANT_EVENTS: dict[tuple[str, str], EventType] = {
    ("agent", "joined"): "session.agent_joined",
    ("user", "joined"): "session.user_joined",
    ("agent", "left"): "session.agent_left",
    ("user", "left"): "session.user_left",
}


def _kind_of(record: SessionRecord, participant: api.ParticipantInfo) -> str | None:
    if participant.kind == AGENT:
        return "agent"
    return "user" if is_the_user(record, participant) else None


def _participant_event(
    change: str, record: SessionRecord, webhook: api.WebhookEvent, at: datetime
) -> SessionEvent | None:
    participant = webhook.participant
    kind = _kind_of(record, participant)
    if kind is None:
        return None
    event_type = _PARTICIPANT_EVENTS[(kind, change)]
    left = change == "left"
    reason = api.DisconnectReason.Name(participant.disconnect_reason) if left else None
    details = {
        "participant": {
            "identity": participant.identity,
            "kind": api.ParticipantInfo.Kind.Name(participant.kind),
            "disconnect_reason": reason,
        }
    }
    # LiveKit's webhook id is stable across its retries of that webhook.
    return _event(event_type, record, room_name_of(webhook), at, details, webhook.id)


def room_name_of(webhook: api.WebhookEvent) -> str:
    return str(webhook.room.name)


def _event(
    event_type: EventType,
    record: SessionRecord,
    room_name: str,
    at: datetime,
    details: dict[str, Any],
    occurrence: str = "",
) -> SessionEvent:
    sequence = sequence_of(event_type, record.created_at, at)
    data = {
        "session_id": record.session_id,
        "room_name": room_name,
        "user_id": record.user_id,
        "agent_id": record.agent_id,
        "sequence": sequence,
    } | details
    event_id = _event_id(record.session_id, event_type, occurrence or str(sequence))
    return SessionEvent(event_id, event_type, at, data)


def sequence_of(event_type: EventType, created_at: datetime, at: datetime) -> int:
    if event_type == "session.created":
        return 0
    # At least 1 ms: a clock a little behind the creating replica's never orders before created.
    elapsed_ms = max(1, round((at - created_at).total_seconds() * 1000))
    return elapsed_ms * 10 + _RANK[event_type]


def _event_id(session_id: str, event_type: EventType, occurrence: str) -> str:
    digest = hashlib.sha256(f"{session_id}\n{event_type}\n{occurrence}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")

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
what happened, so two replicas making the same event make one id. A participant event's is the
participant's connection: its identity and the join time LiveKit gives it (LiveKit's webhook id
only when it gives none), the same whether the gateway heard LiveKit's webhook (a retry of it
too) or found the join or leave itself because that webhook was lost (reconciliation: the sweep,
the agent watch, and at the end of a session the leaves of whoever was still in its room).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..livekit import api
from .endings import EndReason
from .lifecycle import AGENT, is_the_user, reported_join_time
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
    return _participant_event(
        "joined", record, room_name_of(webhook), webhook.participant, at, webhook.id
    )


def participant_left(
    record: SessionRecord, webhook: api.WebhookEvent, at: datetime
) -> SessionEvent | None:
    """`session.agent_left` or `session.user_left`; None for anyone else in the room."""
    return _participant_event(
        "left", record, room_name_of(webhook), webhook.participant, at, webhook.id
    )


def joined_unreported(
    record: SessionRecord, room_name: str, participant: api.ParticipantInfo
) -> SessionEvent | None:
    """A join LiveKit lists but no webhook reported: the event its webhook would have made."""
    at = reported_join_time(participant)
    if at is None:  # no join time: no id the webhook's event would share
        return None
    return _participant_event("joined", record, room_name, participant, at, "")


Who = Literal["agent", "user"]


def left_unreported(
    record: SessionRecord, room_name: str, who: Who, at: datetime, reason: str | None
) -> SessionEvent | None:
    """A leave no webhook reported, for the join last observed (`record.observed`); `reason` is
    LiveKit's DisconnectReason name when the gateway knows it (it is deleting the room), else
    None. The user's kind is STANDARD: what the join was is not kept."""
    observed = record.observed
    if who == "agent":
        identity, joined, kind = observed.agent_identity, observed.agent_joined_at, "AGENT"
    else:
        joined = observed.user_connected_at or observed.user_joined_at
        identity, kind = record.user_id, "STANDARD"
    if identity is None or joined is None:
        return None
    details = _participant_details(identity, kind, reason)
    event_type = _PARTICIPANT_EVENTS[(who, "left")]
    return _event(event_type, record, room_name, at, details, _connection(identity, joined))


def leaves_at_end(
    record: SessionRecord, room_name: str, at: datetime, reason: str | None
) -> list[SessionEvent]:
    """At the end of a session, a leave for whoever was last observed in its room, so every join
    has its leave before `session.ended` (the same ids as LiveKit's webhooks of them would give)."""
    observed = record.observed
    still_in: list[Who] = []
    if observed.user_joined_at is not None and observed.user_left_at is None:
        still_in.append("user")
    if observed.agent_joined_at is not None and observed.agent_left_at is None:
        still_in.append("agent")
    leaves = [left_unreported(record, room_name, who, at, reason) for who in still_in]
    return [leave for leave in leaves if leave is not None]


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
    change: str,
    record: SessionRecord,
    room_name: str,
    participant: api.ParticipantInfo,
    at: datetime,
    webhook_id: str,
) -> SessionEvent | None:
    kind = _kind_of(record, participant)
    if kind is None:
        return None
    event_type = _PARTICIPANT_EVENTS[(kind, change)]
    left = change == "left"
    reason = api.DisconnectReason.Name(participant.disconnect_reason) if left else None
    kind_name = api.ParticipantInfo.Kind.Name(participant.kind)
    details = _participant_details(participant.identity, kind_name, reason)
    joined = reported_join_time(participant)
    # LiveKit's webhook id is stable across its retries of that webhook, but only the connection
    # is known to a replica that finds the join or leave without the webhook.
    occurrence = _connection(participant.identity, joined) if joined else webhook_id
    return _event(event_type, record, room_name, at, details, occurrence)


def _participant_details(identity: str, kind: str, reason: str | None) -> dict[str, Any]:
    return {"participant": {"identity": identity, "kind": kind, "disconnect_reason": reason}}


def _connection(identity: str, joined: datetime) -> str:
    """One connection of one participant: LiveKit lets one identity in once at a time."""
    return f"{identity}@{round(joined.timestamp() * 1000)}"


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

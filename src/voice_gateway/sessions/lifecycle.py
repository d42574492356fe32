"""Where a session stands, from what LiveKit says of its room and participants: pure functions,
no calls. `Observed` (record.py) is what the gateway saw of the participants over the session's
life; the participants LiveKit lists now are what is true at this moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from livekit import api

from .endings import EndReason
from .record import Observed, SessionRecord

AGENT = api.ParticipantInfo.Kind.AGENT


def is_the_user(record: SessionRecord, participant: api.ParticipantInfo) -> bool:
    # The session's token names its user as the identity; nobody else can join as a user.
    return participant.kind != AGENT and participant.identity == record.user_id


def joined_at(participant: api.ParticipantInfo) -> datetime:
    seconds = participant.joined_at_ms / 1000 or participant.joined_at
    return datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC)


def seen_joining(
    observed: Observed, record: SessionRecord, participant: api.ParticipantInfo
) -> Observed:
    if participant.kind == AGENT and (observed.agent_left_at or not observed.agent_joined_at):
        at = joined_at(participant)
        change = {"agent_identity": participant.identity, "agent_joined_at": at}
        return observed.model_copy(update=change | {"agent_left_at": None})
    if is_the_user(record, participant) and observed.user_joined_at is None:
        return observed.model_copy(update={"user_joined_at": joined_at(participant)})
    return observed


def seen_leaving(observed: Observed, participant: api.ParticipantInfo, at: datetime) -> Observed:
    same_agent = observed.agent_identity in (None, participant.identity)
    if participant.kind == AGENT and same_agent and observed.agent_left_at is None:
        return observed.model_copy(update={"agent_left_at": at})
    return observed


def reason_livekit_closed(record: SessionRecord, closed_at: datetime) -> EndReason:
    """Why LiveKit closed a session's room by itself: its empty timeout when no user was seen in
    it (`user_never_joined`), its departure timeout after one was (`user_left`), unless the
    session had expired anyway."""
    if record.has_expired(closed_at):
        return "expired"
    return "user_left" if record.observed.user_joined_at else "user_never_joined"


def agent_due_at(record: SessionRecord, timeout_s: int) -> datetime | None:
    """When the session's agent must be in its room by, as far as the gateway saw; None when it
    is there (or no agent is asked for, or the limit is off)."""
    if timeout_s <= 0 or not record.agent_id:
        return None
    observed = record.observed
    if observed.agent_joined_at and not observed.agent_left_at:
        return None
    since = observed.agent_left_at or record.created_at
    return since + timedelta(seconds=timeout_s)

"""Where a session stands, from what LiveKit says of its room and participants: pure functions,
no calls. `Observed` (record.py) is what the gateway saw of the participants over the session's
life; the participants LiveKit lists now are what is true at this moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from ..livekit import api
from .endings import EndReason
from .record import Observed, SessionRecord

AGENT = api.ParticipantInfo.Kind.AGENT


def is_the_user(record: SessionRecord, participant: api.ParticipantInfo) -> bool:
    # The session's token names its user as the identity; nobody else can join as a user.
    return participant.kind != AGENT and participant.identity == record.user_id


def livekit_time(milliseconds: int, seconds: int) -> datetime | None:
    """A time LiveKit gives in both resolutions (the finer one preferred); None when it says
    nothing, or a time no datetime holds (a broken clock, a field of garbage)."""
    timestamp = milliseconds / 1000 or seconds
    if not timestamp:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def reported_join_time(participant: api.ParticipantInfo) -> datetime | None:
    """When LiveKit says the participant joined, if it says so sanely."""
    return livekit_time(participant.joined_at_ms, participant.joined_at)


def joined_at(participant: api.ParticipantInfo) -> datetime:
    return reported_join_time(participant) or datetime.now(UTC)


def seen_joining(
    observed: Observed, record: SessionRecord, participant: api.ParticipantInfo
) -> Observed:
    if participant.kind == AGENT and _a_new_join(observed, participant):
        at = joined_at(participant)
        change = {"agent_identity": participant.identity, "agent_joined_at": at}
        return observed.model_copy(update=change | {"agent_left_at": None})
    if is_the_user(record, participant) and _a_new_connection(observed, participant):
        at = joined_at(participant)
        first = observed.user_joined_at or at
        change = {"user_joined_at": first, "user_connected_at": at, "user_left_at": None}
        return observed.model_copy(update=change)
    return observed


def _a_new_connection(observed: Observed, user: api.ParticipantInfo) -> bool:
    # A rejoin after a leave seen, or a first join; or a join later than the one last seen (its
    # leave unseen): not a webhook retried or replayed, whose join is the one last seen.
    if observed.user_left_at or not observed.user_joined_at:
        return True
    connected = observed.user_connected_at
    return connected is not None and joined_at(user) > connected


def _a_new_join(observed: Observed, agent: api.ParticipantInfo) -> bool:
    # A join from before the leave last seen (a webhook retried, replayed or late) changes
    # nothing: it would switch off the agent's deadline for a room the agent has left.
    if observed.agent_left_at is None:
        return observed.agent_joined_at is None
    return joined_at(agent) > observed.agent_left_at


def seen_leaving(
    observed: Observed, record: SessionRecord, participant: api.ParticipantInfo, at: datetime
) -> Observed:
    same_agent = observed.agent_identity in (None, participant.identity)
    if participant.kind == AGENT and same_agent and observed.agent_left_at is None:
        return observed.model_copy(update={"agent_left_at": at})
    if is_the_user(record, participant) and observed.user_left_at is None:
        # Its join may not have been seen (a webhook lost, or two replicas writing at once).
        first = observed.user_joined_at or joined_at(participant)
        return observed.model_copy(update={"user_joined_at": first, "user_left_at": at})
    return observed


def reason_livekit_closed(record: SessionRecord, closed_at: datetime) -> EndReason:
    """Why LiveKit closed a session's room by itself: its empty timeout when no user was seen in
    it (`user_never_joined`), its departure timeout after one was (`user_left`), unless the
    session had expired anyway."""
    if record.has_expired(closed_at):
        return "expired"
    return "user_left" if record.observed.user_joined_at else "user_never_joined"


def started_at(room: api.Room) -> datetime:
    """When LiveKit created the room: a token session's room starts at its first join, which
    may be long after the token (and the record) was made."""
    return livekit_time(room.creation_time_ms, room.creation_time) or datetime.now(UTC)


def agent_due_at(
    record: SessionRecord, room_started_at: datetime, timeout_s: int
) -> datetime | None:
    """When the session's agent must be in its room by, as far as the gateway saw; None when it
    is there (or no agent is asked for, or the limit is off)."""
    if timeout_s <= 0 or not record.agent_id:
        return None
    observed = record.observed
    if observed.agent_joined_at and not observed.agent_left_at:
        return None
    since = observed.agent_left_at or max(room_started_at, record.created_at)
    return since + timedelta(seconds=timeout_s)


Status = Literal["waiting_for_agent", "waiting_for_user", "active", "ending"]
AgentStateName = Literal["dispatched", "joined", "left", "failed"]


@dataclass(frozen=True)
class AgentState:
    name: str
    state: AgentStateName
    identity: str | None = None
    joined_at: datetime | None = None


@dataclass(frozen=True)
class UserState:
    identity: str
    joined: bool
    joined_at: datetime | None = None


@dataclass(frozen=True)
class SessionState:
    status: Status
    agent: AgentState | None  # None: a session with no agent asked for
    user: UserState


def state_now(
    record: SessionRecord,
    participants: list[api.ParticipantInfo],
    dispatches: list[api.AgentDispatch],
    ending: bool,
) -> SessionState:
    """Where the session stands, from LiveKit's participants and the agent's dispatch now."""
    user = next((p for p in participants if is_the_user(record, p)), None)
    user_state = UserState(
        record.user_id,
        joined=user is not None,
        joined_at=joined_at(user) if user else record.observed.user_joined_at,
    )
    agent = _agent_now(record, participants, dispatches) if record.agent_id else None
    return SessionState(_status(ending, agent, user_state), agent, user_state)


def state_observed(record: SessionRecord, ending: bool) -> SessionState:
    """Where the session stands by what was observed of it: what a list of many sessions can
    tell from one ListRooms (whose participant counts lag a leave by seconds: not used)."""
    observed = record.observed
    in_room = observed.user_joined_at is not None and observed.user_left_at is None
    user = UserState(record.user_id, in_room, observed.user_joined_at)
    agent = _agent_observed(record) if record.agent_id else None
    return SessionState(_status(ending, agent, user), agent, user)


def _agent_now(
    record: SessionRecord,
    participants: list[api.ParticipantInfo],
    dispatches: list[api.AgentDispatch],
) -> AgentState:
    present = next((p for p in participants if p.kind == AGENT), None)
    if present is not None:
        return AgentState(record.agent_id, "joined", present.identity, joined_at(present))
    jobs = [job for d in dispatches if d.agent_name == record.agent_id for job in d.state.jobs]
    identity = next(
        (j.state.participant_identity for j in jobs if j.state.participant_identity), None
    )
    statuses = {job.state.status for job in jobs}
    if api.JobStatus.JS_FAILED in statuses:
        return AgentState(record.agent_id, "failed", identity)
    # A running job names its agent before the agent is in the room (it joins ~0.1 s later), and
    # still runs after its agent was removed: only an ended job, or a join seen, means it left.
    if api.JobStatus.JS_SUCCESS in statuses or record.observed.agent_joined_at:
        return AgentState(record.agent_id, "left", identity or record.observed.agent_identity)
    return AgentState(record.agent_id, "dispatched", identity)


def _agent_observed(record: SessionRecord) -> AgentState:
    observed = record.observed
    if observed.agent_joined_at is None:
        return AgentState(record.agent_id, "dispatched")
    state: AgentStateName = "left" if observed.agent_left_at else "joined"
    return AgentState(record.agent_id, state, observed.agent_identity, observed.agent_joined_at)


def _status(ending: bool, agent: AgentState | None, user: UserState) -> Status:
    if ending:
        return "ending"
    if agent is not None and agent.state != "joined":
        return "waiting_for_agent"
    return "active" if user.joined else "waiting_for_user"

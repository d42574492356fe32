"""Sessions started through the token endpoint: planned here, created by LiveKit on first join.

No RPC is made for them. The join token carries the room's whole configuration, the session
record as its metadata included, so the room LiveKit creates when the first participant joins
is a gateway session like any other: GET, DELETE and the expiry reaper find it by name and
metadata. Each call without a room name gets a fresh room, because LiveKit applies a token's
room configuration (and so dispatches its agent) only when the join creates the room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..errors import FieldError, InvalidRequest
from ..ids import new_token_session_id
from ..livekit import api
from ..settings import Settings
from ..vocabulary import token_room_name, token_session_id_of
from .record import SessionRecord, session_lifetime
from .room_config import RoomPolicy, VettedRoom, vet_room_config
from .time_limits import livekit_timeout


@dataclass(frozen=True)
class TokenAsk:
    """What the caller asked for; no identity: a fresh one (for a caller trusted to name none)."""

    identity: str | None
    room_config: api.RoomConfiguration
    room_name: str | None = None
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenSession:
    record: SessionRecord
    room_name: str
    room_config: api.RoomConfiguration


def plan_token_session(
    ask: TokenAsk, settings: Settings, now: datetime, identity: str
) -> TokenSession:
    session_id = _session_id_for(ask.room_name, settings.room_prefix)
    room_name = token_room_name(settings.room_prefix, session_id)
    vetted = vet_room_config(ask.room_config, room_name, room_policy(settings))
    record = SessionRecord(
        session_id=session_id,
        user_id=identity,
        agent_id=vetted.agent.agent_name if vetted.agent else "",
        created_at=now,
        expires_at=now + session_lifetime(settings.token_session_hours),
        source="token",
    )
    return TokenSession(record, room_name, _room_config(room_name, record, vetted))


def room_policy(settings: Settings) -> RoomPolicy:
    lifetime_s = int(session_lifetime(settings.token_session_hours).total_seconds())
    return RoomPolicy(
        allowed_agents=settings.allowed_agents,
        default_agent=settings.default_agent,
        empty_timeout_s=livekit_timeout(settings.user_join_timeout_s, lifetime_s),
        departure_timeout_s=livekit_timeout(settings.solo_timeout_s, lifetime_s),
        max_metadata_bytes=settings.max_client_metadata_bytes,
    )


def _session_id_for(room_name: str | None, prefix: str) -> str:
    if room_name is None:
        return new_token_session_id()
    session_id = token_session_id_of(room_name, prefix)
    if session_id is None:
        # Only names of the gateway's own shape: it is not a minter of tokens for any room.
        problem = FieldError("room_name", f"must be a room this gateway names: {prefix}_<uuid>")
        raise InvalidRequest("Invalid field: room_name", field_errors=[problem])
    return session_id


def _room_config(
    room_name: str, record: SessionRecord, vetted: VettedRoom
) -> api.RoomConfiguration:
    agents = []
    if vetted.agent is not None:
        agent = api.RoomAgentDispatch()
        agent.CopyFrom(vetted.agent)
        agent.metadata = agent.metadata or record.dispatch_metadata()
        agents.append(agent)
    return api.RoomConfiguration(
        name=room_name,
        empty_timeout=vetted.empty_timeout,
        departure_timeout=vetted.departure_timeout,
        metadata=record.to_metadata(),
        agents=agents,
    )

"""The wire models: they validate requests, shape responses and generate the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ..sessions.room_config import attributes_size
from ..vocabulary import AGENT_ALPHABET, AGENT_ID_PATTERN, IDENTITY_ALPHABET, USER_ID_PATTERN

MAX_NAME_BYTES = 256  # LiveKit's limit on a participant's name


def to_utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with the `Z` designator, to the second: what JWT `exp` can express."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


UtcTimestamp = Annotated[datetime, PlainSerializer(to_utc_text, return_type=str, when_used="json")]


def to_utc_millis_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# When a participant joined, to the millisecond LiveKit gives: how soon after a join an answer
# came is a figure clients measure.
UtcMillis = Annotated[
    datetime, PlainSerializer(to_utc_millis_text, return_type=str, when_used="json")
]
UserId = Annotated[
    str,
    StringConstraints(pattern=USER_ID_PATTERN),
    Field(
        description=(
            f"Who joins: {IDENTITY_ALPHABET}. Required with a service key; "
            "an end user may omit it (its token's `sub` is used) and may name only itself."
        ),
        examples=["nate"],
    ),
]
AgentId = Annotated[
    str,
    StringConstraints(pattern=AGENT_ID_PATTERN),
    Field(description=f"The voice agent to dispatch: {AGENT_ALPHABET}", examples=["pm-agent"]),
]
Hours = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


def _user_id_optional_on_the_wire(schema: dict[str, Any]) -> None:
    # An end user's handler fills user_id from its token before validation, so the wire contract
    # has it optional while the model (what the handler validates) still requires it.
    schema["required"] = [name for name in schema.get("required", []) if name != "user_id"]


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_user_id_optional_on_the_wire)

    user_id: UserId
    agent_id: AgentId
    session_duration_hours: Hours = Field(
        1.0, description="Session length; at most VOICE_GATEWAY_MAX_SESSION_HOURS", examples=[2]
    )
    # Strict: "yes" or 1 where JSON has true is a client's mistake, refused rather than guessed.
    wait_for_agent: Annotated[bool, Strict()] = Field(
        False,
        description="Answer once the agent is in the room (with `agent`), at most "
        "VOICE_GATEWAY_AGENT_WAIT_S: else 504 agent_timeout, or 503 agent_unavailable when its "
        "job failed; either way the session is ended and its room deleted",
    )

    @field_validator("session_duration_hours")
    @classmethod
    def _within_configured_maximum(cls, hours: float, info: ValidationInfo) -> float:
        maximum = (info.context or {}).get("max_session_hours")
        if maximum is not None and hours > maximum:
            raise ValueError(f"must be at most {maximum:g} hours")
        return hours


class JoinedAgent(BaseModel):
    identity: str = Field(examples=["agent-AJ_4Qx1b2c3d4e5"])
    joined_at: UtcMillis


class SessionCreated(BaseModel):
    session_id: str = Field(examples=["sess_4Qx1b2c3d4e5f6g7h8i9jA"])
    room_name: str = Field(examples=["foundry_nate_pm-agent_sess_4Qx1b2c3d4e5f6g7h8i9jA"])
    token: str = Field(description="LiveKit join token for this room only")
    livekit_url: str = Field(examples=["ws://localhost:7880"])
    expires_at: UtcTimestamp
    agent: JoinedAgent | None = Field(
        None, description="The agent in the room: only when the request asked `wait_for_agent`"
    )


class TokenRequest(BaseModel):
    """LiveKit's `TokenSourceRequest` as `TokenSource.endpoint` sends it: snake_case, every
    field optional, fields this version does not know ignored (newer clients may send them)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})

    room_name: str | None = Field(
        None,
        max_length=256,
        description="Only service callers may name the room, and only as {prefix}_{uuid}; "
        "absent: a fresh room per call",
    )
    participant_identity: UserId | None = None
    participant_name: str | None = Field(None, description="At most 256 bytes")
    participant_metadata: str | None = Field(
        None, description="At most VOICE_GATEWAY_MAX_CLIENT_METADATA_BYTES bytes"
    )
    participant_attributes: dict[str, str] | None = Field(
        None, description="Keys and values together at most VOICE_GATEWAY_MAX_CLIENT_METADATA_BYTES"
    )
    room_config: dict[str, Any] | None = Field(
        None,
        description="A LiveKit RoomConfiguration: agents (allowlisted), empty_timeout and "
        "departure_timeout (at most the gateway's); egress, max_participants, metadata and tags "
        "are refused",
        examples=[{"agents": [{"agent_name": "pm-agent"}]}],
    )

    @field_validator("participant_name")
    @classmethod
    def _name_fits_livekit(cls, name: str | None) -> str | None:
        if name is not None and len(name.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"must be at most {MAX_NAME_BYTES} bytes")
        return name

    @field_validator("participant_metadata", "participant_attributes")
    @classmethod
    def _within_metadata_bound(
        cls, value: str | dict[str, str] | None, info: ValidationInfo
    ) -> str | dict[str, str] | None:
        limit = (info.context or {}).get("max_client_metadata_bytes")
        if value is None or limit is None:
            return value
        size = len(value.encode()) if isinstance(value, str) else attributes_size(value)
        if size > limit:
            raise ValueError(f"must be at most {limit} bytes")
        return value


class TokenIssued(BaseModel):
    """LiveKit's `TokenSourceResponse` (snake_case, as Swift requires), plus the room and name."""

    server_url: str = Field(examples=["wss://voice.example.com"])
    participant_token: str = Field(description="LiveKit join token for this room only")
    room_name: str = Field(examples=["foundry_1b4e28ba-2fa1-41d2-883f-0016d3cca427"])
    participant_name: str


class WebhookEvent(BaseModel):
    """LiveKit's `WebhookEvent` as the server sends it: protojson, lowerCamelCase keys. Only
    documented here; the SDK's WebhookReceiver verifies and parses it."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    event: str = Field(examples=["room_started", "participant_joined"])
    id: str | None = Field(None, examples=["EV_tkqSD8FiAnd3"])
    createdAt: str | None = Field(None, description="Unix seconds, as a string")
    room: dict[str, Any] | None = None
    participant: dict[str, Any] | None = None


class WebhookAccepted(BaseModel):
    event: str = Field(examples=["room_started"])
    session_id: str | None = Field(description="The gateway session the event's room holds")


class ParticipantView(BaseModel):
    identity: str
    name: str
    state: str = Field(examples=["ACTIVE"])
    kind: str = Field(examples=["STANDARD", "AGENT"])
    joined_at: UtcTimestamp | None


class AgentView(BaseModel):
    name: str = Field(examples=["pm-agent"])
    state: Literal["dispatched", "joined", "left", "failed"] = Field(
        description="dispatched: asked for, not in the room (yet); joined: in the room; left: was "
        "in the room and is not now; failed: its job failed"
    )
    identity: str | None = Field(examples=["agent-AJ_4Qx1b2c3d4e5"])
    joined_at: UtcMillis | None


class UserView(BaseModel):
    identity: str = Field(examples=["nate"])
    joined: bool = Field(description="in the room now")
    joined_at: UtcMillis | None = Field(
        description="when the user is in the room now, or joined first"
    )


SESSION_STATUS_DESCRIPTION = (
    "waiting_for_agent: the agent is not in the room; waiting_for_user: the agent is, the user "
    "is not; active: both are; ending: the session has ended (or expired) and its room is going"
)


class SessionSummary(BaseModel):
    """A session as a list shows it: from one ListRooms, by what the gateway observed."""

    session_id: str
    room_name: str
    user_id: str
    agent_id: str
    created_at: UtcTimestamp
    expires_at: UtcTimestamp
    status: Literal["waiting_for_agent", "waiting_for_user", "active", "ending"] = Field(
        description=SESSION_STATUS_DESCRIPTION
    )
    agent: AgentView | None = Field(description="null: no agent was asked for")
    user: UserView


class SessionView(SessionSummary):
    """A session as LiveKit has it now: its participants and its agent's dispatch."""

    room_sid: str
    num_participants: int
    participants: list[ParticipantView]


class SessionListQuery(BaseModel):
    """The query of `GET /api/voice/sessions`; an unknown parameter is refused, so a typo
    never silently widens what is listed."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        None, pattern=USER_ID_PATTERN, description="Only this user's (an end user: only their own)"
    )
    agent_id: str | None = Field(None, pattern=AGENT_ID_PATTERN, description="Only this agent's")
    status: Literal["waiting_for_agent", "waiting_for_user", "active", "ending"] | None = Field(
        None, description="Only sessions in this status"
    )
    limit: int = Field(20, ge=1, le=100, description="Sessions per page, 1-100")
    cursor: str | None = Field(
        None, max_length=512, description="The `next_cursor` of the page before"
    )


class SessionList(BaseModel):
    sessions: list[SessionSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: no more")


class HealthStatus(BaseModel):
    status: str = Field(examples=["ok", "ready"])


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable `code` and the request's id."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": True})

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: list[FieldProblem] | None = None
    # `concurrency_limit` only: the session cap that is full.
    cap: Literal["gateway", "agent", "user"] | None = Field(
        None, description="concurrency_limit: which session cap is full"
    )
    limit: int | None = Field(None, description="concurrency_limit: that cap's limit")
    count: int | None = Field(None, description="concurrency_limit: its live sessions now")


class CapUsage(BaseModel):
    limit: int | None = Field(description="At most this many live sessions; null: no cap")
    count: int = Field(description="Live sessions counted against it now")


class UserCapUsage(BaseModel):
    limit: int | None = Field(description="VOICE_GATEWAY_MAX_SESSIONS_PER_USER; null: no cap")
    user_id: str | None = Field(description="The end user counted; null for a service key")
    count: int | None = Field(description="That user's live sessions; null for a service key")


class AgentCapUsage(BaseModel):
    limit: int | None = Field(description="VOICE_GATEWAY_MAX_SESSIONS_PER_AGENT; null: no cap")
    counts: dict[str, int] = Field(
        description="Live sessions per agent (agents with none are left out)",
        examples=[{"pm-agent": 2}],
    )


class UsageView(BaseModel):
    """The session caps in the caller's scope and their counts, in live sessions."""

    gateway: CapUsage = Field(description="VOICE_GATEWAY_MAX_SESSIONS: the whole gateway")
    user: UserCapUsage
    agent: AgentCapUsage | None = Field(description="Per agent; null for an end user")

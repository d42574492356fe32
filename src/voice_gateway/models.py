"""The wire models: they validate requests, shape responses and generate the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

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

USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,128}$"
AGENT_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"
# Every character a room name of ours can hold: prefix, user id, agent id, session id, and "_".
ROOM_NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,256}$"


def to_utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with the `Z` designator, to the second: what JWT `exp` can express."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


UtcTimestamp = Annotated[datetime, PlainSerializer(to_utc_text, return_type=str, when_used="json")]
UserId = Annotated[
    str,
    StringConstraints(pattern=USER_ID_PATTERN),
    Field(
        description=(
            "Who joins: 1-128 characters of A-Z a-z 0-9 _ . @ -. Required with a service key; "
            "an end user may omit it (its token's `sub` is used) and may name only itself."
        ),
        examples=["nate"],
    ),
]
AgentId = Annotated[
    str,
    StringConstraints(pattern=AGENT_ID_PATTERN),
    Field(description="The voice agent to dispatch: 1-64 of a-z 0-9 _ -", examples=["pm-agent"]),
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

    @field_validator("session_duration_hours")
    @classmethod
    def _within_configured_maximum(cls, hours: float, info: ValidationInfo) -> float:
        maximum = (info.context or {}).get("max_session_hours")
        if maximum is not None and hours > maximum:
            raise ValueError(f"must be at most {maximum:g} hours")
        return hours


class SessionCreated(BaseModel):
    session_id: str = Field(examples=["sess_4Qx1b2c3d4e5f6g7h8i9jA"])
    room_name: str = Field(examples=["foundry_nate_pm-agent_sess_4Qx1b2c3d4e5f6g7h8i9jA"])
    token: str = Field(description="LiveKit join token for this room only")
    livekit_url: str = Field(examples=["ws://localhost:7880"])
    expires_at: UtcTimestamp


class ParticipantView(BaseModel):
    identity: str
    name: str
    state: str = Field(examples=["ACTIVE"])
    kind: str = Field(examples=["STANDARD", "AGENT"])
    joined_at: UtcTimestamp | None


class SessionView(BaseModel):
    session_id: str
    room_name: str
    user_id: str
    agent_id: str
    created_at: UtcTimestamp
    expires_at: UtcTimestamp
    room_sid: str
    num_participants: int
    participants: list[ParticipantView]


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

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

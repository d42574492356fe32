"""What a session is, as stored in its LiveKit room: the room's name and its metadata.

The gateway keeps no state of its own. A room is one of our sessions only when its metadata parses
as a `SessionRecord` and its name is exactly the name that record implies, so the gateway never
reads or deletes a room it did not create.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

SESSION_ID_PREFIX = "sess_"


class SessionRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    session_id: str
    user_id: str
    agent_id: str
    created_at: datetime
    expires_at: datetime

    def room_name(self, prefix: str) -> str:
        return room_name_for(prefix, self.user_id, self.agent_id, self.session_id)

    def to_metadata(self) -> str:
        return self.model_dump_json()


def new_session_id() -> str:
    # 16 random bytes: 128 bits, 22 URL-safe characters.
    return SESSION_ID_PREFIX + secrets.token_urlsafe(16)


def room_name_for(prefix: str, user_id: str, agent_id: str, session_id: str) -> str:
    return f"{prefix}_{user_id}_{agent_id}_{session_id}"


def is_session_room_name(room_name: str, prefix: str) -> bool:
    """A cheap first filter, before asking LiveKit about a room."""
    return room_name.startswith(f"{prefix}_") and len(room_name) <= 256


def record_of(room_name: str, metadata: str, prefix: str) -> SessionRecord | None:
    """The session a room holds, or None when the room is not one of the gateway's sessions."""
    try:
        record = SessionRecord.model_validate_json(metadata)
    except ValidationError:
        return None
    return record if record.room_name(prefix) == room_name else None

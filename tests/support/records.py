"""Session records as the gateway writes them into a room's metadata, for tests to plant."""

from __future__ import annotations

from datetime import datetime, timedelta

from voice_gateway.sessions.record import SessionRecord


def session_record(created_at: datetime, **fields: object) -> SessionRecord:
    """A one-hour session of nate's with pm-agent, created at `created_at`, unless `fields` say
    otherwise."""
    values: dict[str, object] = {
        "session_id": "sess_abc",
        "user_id": "nate",
        "agent_id": "pm-agent",
        "created_at": created_at,
        "expires_at": created_at + timedelta(hours=1),
    }
    return SessionRecord.model_validate(values | fields)

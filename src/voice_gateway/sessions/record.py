"""What a session is, as stored in its LiveKit room: the room's name and its metadata.

The gateway keeps no state of its own. A room is one of our sessions only when its metadata parses
as a `SessionRecord` and its name is exactly the name that record implies, so the gateway never
reads or deletes a room it did not create. Two name shapes exist, one per way a session starts
(`vocabulary.py`); the record says which (`source`), so neither shape can pass for the other.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..vocabulary import is_canonical_uuid, session_room_name, token_room_name

SessionSource = Literal["session", "token"]


class Observed(BaseModel):
    """What the gateway saw of a session's participants, kept in its room's metadata beside the
    record (lifecycle.py): enough to name why LiveKit closed the room, to list sessions by status
    from one ListRooms, and to know when the agent is due. LiveKit's participants stay the truth
    a session's own status is read from; this only says where to look."""

    model_config = ConfigDict(frozen=True)

    user_joined_at: datetime | None = None  # the first join
    user_connected_at: datetime | None = None  # the latest join (a leave's event names it)
    user_left_at: datetime | None = None  # None while in the room (as far as seen)
    agent_identity: str | None = None
    agent_joined_at: datetime | None = None
    agent_left_at: datetime | None = None


NOTHING_SEEN = Observed()  # compared with, not built, per record written: it is frozen


class SessionRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    session_id: str
    user_id: str
    agent_id: str
    created_at: datetime
    expires_at: datetime
    # Absent in rooms made before the token endpoint existed: those are all "session" rooms.
    source: SessionSource = "session"
    observed: Observed = NOTHING_SEEN

    def as_created(self) -> SessionRecord:
        """The record as the session was created, without what was seen of it since."""
        return self.model_copy(update={"observed": NOTHING_SEEN})

    def room_name(self, prefix: str) -> str:
        """The one name a room holding this record may have."""
        if self.source == "token":
            return token_room_name(prefix, self.session_id)
        return session_room_name(prefix, self.user_id, self.agent_id, self.session_id)

    def is_well_formed(self) -> bool:
        # A token session's id must be a UUID, so its short name never takes another shape.
        return self.source != "token" or is_canonical_uuid(self.session_id)

    def has_expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def to_metadata(self) -> str:
        # Nothing seen yet: no such field, so a new room's metadata is what it always was.
        unseen = {"observed"} if self.observed == NOTHING_SEEN else None
        return self.model_dump_json(exclude=unseen, exclude_none=True)

    def dispatch_metadata(self) -> str:
        """What the dispatched agent is told, unless the client told it something itself."""
        return json.dumps({"session_id": self.session_id, "user_id": self.user_id})


def now_to_the_second() -> datetime:
    # Whole seconds: a JWT's exp has no finer resolution, and expires_at must equal it.
    return datetime.now(UTC).replace(microsecond=0)


def session_lifetime(hours: float) -> timedelta:
    return timedelta(seconds=max(1, math.ceil(hours * 3600)))


# The sweep and every page of the list read all rooms, whose metadata mostly has not changed
# since the last read: parsing it again was most of a list's cost (bench/lifecycle.py). Only
# metadata the size of a record is kept (a record and its observations are ~0.5 KB), so rooms
# that are not the gateway's cannot fill memory with theirs.
PARSED_RECORDS = 8192
CACHED_METADATA_CHARS = 2048


def record_of(room_name: str, metadata: str, prefix: str) -> SessionRecord | None:
    """The session a room holds, or None when the room is not one of the gateway's sessions
    (a record is frozen: the same one may be handed to every caller)."""
    if not room_name.startswith(f"{prefix}_"):
        return None  # every name a record implies starts so: nothing to parse
    if len(metadata) > CACHED_METADATA_CHARS:
        return _parsed(room_name, metadata, prefix)
    return _cached(room_name, metadata, prefix)


def _parsed(room_name: str, metadata: str, prefix: str) -> SessionRecord | None:
    try:
        record = SessionRecord.model_validate_json(metadata)
    except ValidationError:
        return None
    if not record.is_well_formed() or record.room_name(prefix) != room_name:
        return None
    return record


_cached = functools.lru_cache(maxsize=PARSED_RECORDS)(_parsed)

"""`GET /api/voice/sessions`: the gateway's live sessions, newest first, filtered and paged, from
one ListRooms per page (LiveKit's ListRooms has no paging of its own: every page reads the whole
list, and no session costs a call of its own). Status, agent and user are the observed ones
(`lifecycle.state_observed`): a page of many sessions cannot ask each one's participants; one
session's GET reads them from LiveKit.

Only rooms that hold one of the gateway's sessions appear (`record_of`), and an end user's list is
their own whatever they ask for.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from ..access.caller import Caller
from ..errors import FieldError, InvalidRequest
from ..livekit import api
from . import endings
from .lifecycle import SessionState, Status, state_observed
from .record import SessionRecord, now_to_the_second, record_of


@dataclass(frozen=True)
class SessionFilter:
    user_id: str | None = None
    agent_id: str | None = None
    status: Status | None = None
    limit: int = 20
    cursor: str | None = None


@dataclass(frozen=True)
class ListedSession:
    record: SessionRecord
    room_name: str
    state: SessionState


@dataclass(frozen=True)
class SessionPage:
    sessions: list[ListedSession]
    next_cursor: str | None


class Position(BaseModel):
    """Where a page ends, in the list's order: newest first, ties by session id, descending."""

    created_at: datetime
    session_id: str

    def key(self) -> tuple[datetime, str]:
        return (self.created_at, self.session_id)


def page_of(
    rooms: list[api.Room], prefix: str, caller: Caller, wanted: SessionFilter
) -> SessionPage:
    after = decode_cursor(wanted.cursor) if wanted.cursor else None
    found = sorted(_matching(rooms, prefix, caller, wanted), key=_key, reverse=True)
    if after is not None:
        found = [candidate for candidate in found if _key(candidate) < after.key()]
    page = [_listed(candidate) for candidate in found[: wanted.limit]]
    more = len(found) > wanted.limit
    return SessionPage(page, encode_cursor(page[-1].record) if more else None)


@dataclass(frozen=True)
class _Candidate:
    record: SessionRecord
    room_name: str
    ending: bool


def _matching(
    rooms: list[api.Room], prefix: str, caller: Caller, wanted: SessionFilter
) -> list[_Candidate]:
    ending = endings.revived_room_names(rooms, prefix)
    now, found = now_to_the_second(), []
    for room in rooms:
        record = record_of(room.name, room.metadata, prefix)
        if record is None or not caller.may_act_for(record.user_id):
            continue
        if wanted.user_id in (None, record.user_id) and wanted.agent_id in (None, record.agent_id):
            ended = room.name in ending or record.has_expired(now)
            found.append(_Candidate(record, room.name, ended))
    if wanted.status is None:
        return found
    return [c for c in found if state_observed(c.record, c.ending).status == wanted.status]


def _listed(candidate: _Candidate) -> ListedSession:
    state = state_observed(candidate.record, candidate.ending)
    return ListedSession(candidate.record, candidate.room_name, state)


def _key(candidate: _Candidate) -> tuple[datetime, str]:
    return (candidate.record.created_at, candidate.record.session_id)


def encode_cursor(record: SessionRecord) -> str:
    position = Position(created_at=record.created_at, session_id=record.session_id)
    return base64.urlsafe_b64encode(position.model_dump_json().encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return Position.model_validate_json(data)
    except (binascii.Error, ValueError, ValidationError) as exc:
        problem = FieldError("cursor", "is not a cursor this endpoint gave out")
        raise InvalidRequest("Invalid field: cursor", field_errors=[problem]) from exc

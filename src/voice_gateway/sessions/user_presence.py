"""The sweep's look at a session's user (reaper.py): LiveKit's count of the room's participants
(from the one ListRooms of the pass, agents not counted) against what was observed of the user.
When the two disagree, a participant webhook may have been lost: ListParticipants says whether
the user is there, and a join or leave no webhook reported is observed (observations.py) and sent
as the `session.user_joined` / `session.user_left` event that webhook would have made (events.py:
the same id). Only a session whose count and observation disagree costs that call: a webhook
lost, the count lagging a join or leave by a second or two (docs/livekit-observed.md), or someone
in the room who is neither the agent nor the user (each pass, while they stay and the user is out).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..livekit import api
from . import events
from .lifecycle import is_the_user, seen_joining
from .record import Observed, SessionRecord
from .service import SessionService


async def follow_user(
    sessions: SessionService, room: api.Room, record: SessionRecord
) -> SessionRecord:
    """The record, with what this found of the user observed."""
    observed = record.observed
    in_room = observed.user_joined_at is not None and observed.user_left_at is None
    counted = room.num_participants > 0
    if counted == in_room:
        return record
    participants = await sessions.rooms.participants(room.name)
    user = next((p for p in participants if is_the_user(record, p)), None)
    if user is not None and not in_room:
        return await _joined(sessions, room.name, record, user)
    if user is None and in_room:
        return await _left(sessions, room.name, record)
    return record


async def _joined(
    sessions: SessionService, room_name: str, record: SessionRecord, user: api.ParticipantInfo
) -> SessionRecord:
    def change(current: SessionRecord) -> Observed:
        return seen_joining(current.observed, current, user)

    noticed = await sessions.observations.changed(room_name, change)
    if noticed is None:
        return record
    if joined := events.joined_unreported(noticed, room_name, user):
        await sessions.outbox.emit_settled(joined)  # observed: not found again
    return noticed


async def _left(sessions: SessionService, room_name: str, record: SessionRecord) -> SessionRecord:
    at = datetime.now(UTC)

    def change(current: SessionRecord) -> Observed:
        if current.observed.user_left_at is not None:
            return current.observed
        return current.observed.model_copy(update={"user_left_at": at})

    noticed = await sessions.observations.changed(room_name, change)
    if noticed is None:
        return record
    if left := events.left_unreported(noticed, room_name, "user", at, None):
        await sessions.outbox.emit_settled(left)
    return noticed

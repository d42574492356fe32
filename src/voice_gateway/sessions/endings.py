"""An ended session stays ended, with no store of the gateway's own.

Measured on livekit-server 1.13.5 (tests/e2e/test_final_end.py, docs/livekit-observed.md): a
join token that is still valid re-creates a deleted room, and because the gateway's tokens carry
the room's configuration, the agent is dispatched into it again. A client holds such a token
after the end: the one it was given (valid until `expires_at`) and the one LiveKit refreshes for
every connected client (10 minutes of validity, renewed every 5). The rtc SDK retries a join that
fails, and a retried join re-created the room with the agent but without the session's metadata.
RemoveParticipant's `revoke_token_ts` is not honoured by the open server, and
`room.auto_create: false` would also refuse the token endpoint's first join, which is how that
endpoint's rooms come to exist.

So the gateway ends the revived room itself:
- `mark_ended`, before DELETE or the reaper removes a session's room, creates an *end mark*: a
  room `{prefix}_ended_{session_id}` that is never joined and that LiveKit closes once every
  token of the session has expired (`mark_lifetime_s`).
- A room named as a marked session is *revived* when it holds that same session life (the ended
  record's `created_at`) or no record at all; a session room whose record has expired is over
  too. The webhook intake deletes such a room as soon as LiveKit reports `room_started`, its
  first event; the sweep finds it among the rooms it lists anyway, should that webhook be lost.
  A *new* life under the same name (an Idempotency-Key replayed once its claim has closed
  starts one, with a new `created_at`) is not revived and is left alone.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ValidationError

from ..errors import GatewayError
from ..livekit import api
from ..livekit.rooms import LiveKitRooms, RoomNotFound
from ..ops.metrics import Metrics
from ..vocabulary import end_mark_room_name, session_id_named_by
from .record import SessionRecord, now_to_the_second, record_of

logger = logging.getLogger("voice_gateway.endings")  # pinned: logs know it by this name

# What LiveKit gives the token it refreshes for a connected client: 10 minutes (roommanager.go).
REFRESHED_TOKEN_VALIDITY_S = 600
MARK_MARGIN_S = 60


EndReason = Literal["deleted", "expired", "user_never_joined", "user_left", "agent_failed"]


class EndMark(BaseModel):
    """What an end mark room holds: the room and the session life (its `created_at`) it ends,
    why and when it ended, and a claim naming the one attempt that made the mark: CreateRoom
    returns an existing room unchanged, so of several replicas ending one session (or two ways
    of ending it at once) exactly one finds its own claim in the mark, and its reason counts."""

    ended_room: str
    ended_created_at: datetime
    reason: EndReason | None = None  # None: a mark from before reasons were recorded
    ended_at: datetime | None = None
    claim: str = ""


def mark_lifetime_s(record: SessionRecord, token_ttl_s: int) -> int:
    """Until the last token of the session has expired: its own (`expires_at`), one issued just
    before the end (the token endpoint's TTL), or one LiveKit refreshed just before the end."""
    until_expiry = (record.expires_at - now_to_the_second()).total_seconds()
    longest = max(until_expiry, token_ttl_s, REFRESHED_TOKEN_VALIDITY_S)
    return int(longest) + MARK_MARGIN_S


async def mark_ended(
    rooms: LiveKitRooms, prefix: str, record: SessionRecord, token_ttl_s: int, reason: EndReason
) -> bool:
    """Record that the session is over for good, before its room goes. True when this call's
    mark is the one that stands; False when the session was marked ended before."""
    mark = EndMark(
        ended_room=record.room_name(prefix),
        ended_created_at=record.created_at,
        reason=reason,
        ended_at=now_to_the_second(),
        claim=secrets.token_urlsafe(12),
    )
    request = api.CreateRoomRequest(
        name=end_mark_room_name(prefix, record.session_id),
        metadata=mark.model_dump_json(),
        empty_timeout=mark_lifetime_s(record, token_ttl_s),
    )
    standing = _mark_of((await rooms.create(request)).metadata)
    # A room of that name that holds no mark was not made by a gateway (the prefix is ours alone);
    # the session ends here all the same.
    return standing is None or standing.claim == mark.claim


async def is_over(rooms: LiveKitRooms, prefix: str, room: api.Room) -> bool:
    """Whether `room`, named as one of the gateway's sessions, holds a session that is over:
    expired by its record, or the life an end mark names. A join may have re-created it with
    other metadata than the session's, or none, so its name says which session it is."""
    session_id = session_id_named_by(room.name, prefix)
    if session_id is None:
        return False
    record = record_of(room.name, room.metadata, prefix)
    if record is not None and record.has_expired(now_to_the_second()):
        return True
    mark = await rooms.find(end_mark_room_name(prefix, session_id))
    return mark is not None and room.name in revived_room_names([mark, room], prefix)


def revived_room_names(rooms: list[api.Room], prefix: str) -> set[str]:
    """The rooms among `rooms` that an end mark among them says are over (no call of its own)."""
    marks = _marks_by_room(rooms, prefix)
    revived = set()
    for room in rooms:
        mark = marks.get(room.name)
        record = record_of(room.name, room.metadata, prefix) if mark else None
        if mark and (record is None or record.created_at == mark.ended_created_at):
            revived.add(room.name)
    return revived


def _marks_by_room(rooms: list[api.Room], prefix: str) -> dict[str, EndMark]:
    """The end marks among `rooms`, by the room each names: only a session room of the mark's
    own session, so no mark (whoever made it) can name a room that is not the gateway's."""
    names = end_mark_room_name(prefix, "")
    marks = {}
    for room in rooms:
        mark = _mark_of(room.metadata) if room.name.startswith(names) else None
        session_id = room.name.removeprefix(names)
        if mark and session_id_named_by(mark.ended_room, prefix) == session_id:
            marks[mark.ended_room] = mark
    return marks


async def delete_revived(
    rooms: LiveKitRooms, metrics: Metrics, room_name: str, found_by: str
) -> bool:
    """Delete a room that a join brought back after its session ended; False if it was already
    gone or LiveKit would not delete it now (the next sweep tries again)."""
    try:
        await rooms.delete(room_name)
    except RoomNotFound:
        return False
    except GatewayError as exc:
        logger.warning("could not delete revived room %s (%s): %s", room_name, found_by, exc.detail)
        return False
    metrics.revived_rooms_deleted.labels(found_by).inc()
    logger.warning(
        "room %s was re-created by a join after its session ended (%s); deleted it again",
        room_name,
        found_by,
    )
    return True


def _mark_of(metadata: str) -> EndMark | None:
    try:
        return EndMark.model_validate_json(metadata)
    except ValidationError:  # also what pydantic makes of JSON nested too deep
        return None

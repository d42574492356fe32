"""Writes what the gateway saw of a session's participants (`Observed`, record.py) into its
room's metadata, read fresh just before, one write at a time per room in this process.

Two replicas writing one room at once can lose one write; the sweep repairs what matters
(reaper.py: a user LiveKit counts, an agent found present), so an observation is late, not lost.
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakValueDictionary

import anyio

from ..livekit import api
from ..livekit.rooms import LiveKitRooms, RoomNotFound
from .record import Observed, SessionRecord, record_of

Change = Callable[[SessionRecord], Observed]


class Observations:
    def __init__(self, rooms: LiveKitRooms, prefix: str) -> None:
        self._rooms = rooms
        self._prefix = prefix
        self._locks: WeakValueDictionary[str, anyio.Lock] = WeakValueDictionary()

    async def read(self, room_name: str) -> tuple[api.Room, SessionRecord] | None:
        """The room and the session it holds now; None when it holds none of ours."""
        room = await self._rooms.find(room_name)
        record = record_of(room_name, room.metadata, self._prefix) if room else None
        return (room, record) if room and record else None

    async def update(
        self, room_name: str, change: Change, room_sid: str = ""
    ) -> SessionRecord | None:
        """The session's record with `change` applied and written; None when the room holds
        no session of ours (or is gone), or, given `room_sid` (a webhook's), when the room of
        that name now is another one."""
        return (await self._update(room_name, change, room_sid))[0]

    async def changed(self, room_name: str, change: Change) -> SessionRecord | None:
        """As `update`, but None also when `change` changed nothing: for a repair, whose event
        only the replica that made it (or another making the same at once) sends."""
        record, changed = await self._update(room_name, change)
        return record if changed else None

    async def _update(
        self, room_name: str, change: Change, room_sid: str = ""
    ) -> tuple[SessionRecord | None, bool]:
        lock = self._locks.setdefault(room_name, anyio.Lock())
        async with lock:
            found = await self.read(room_name)
            if found is None or _another_room(found[0], room_sid):
                return None, False
            record = found[1]
            observed = change(record)
            if observed == record.observed:
                return record, False
            written = await self._write(room_name, record.model_copy(update={"observed": observed}))
            return written, written is not None

    async def _write(self, room_name: str, record: SessionRecord) -> SessionRecord | None:
        try:
            await self._rooms.update_metadata(room_name, record.to_metadata())
        except RoomNotFound:
            return None
        return record


def _another_room(room: api.Room, webhook_room_sid: str) -> bool:
    """A webhook late enough to be about an earlier room of this name: the session's, deleted at
    its end, where this one was re-created by a stale token's join with the record the token
    carries. What happened in that room is not this one's to observe, nor to send after
    `session.ended`."""
    return bool(webhook_room_sid and room.sid and room.sid != webhook_room_sid)

"""Ends a session whose agent has not joined, or left and has not come back, within
`VOICE_GATEWAY_AGENT_JOIN_TIMEOUT_S` (reason `agent_failed`), so no user waits in a silent room.
LiveKit has no such limit: an agent does not even keep a room open (time_limits.py).

Prompt: each replica that creates a session, or hears its room start or its agent leave, sets a
timer for when the agent is due. Certain: the sweep checks every session whose agent is overdue by
what was observed (reaper.py), so a lost webhook or a restarted replica delays an end, never
loses it. Only an overdue session costs a call (ListParticipants), and several replicas ending
the same session end it once (closer.py).

What it finds that no webhook reported (an agent there after all, or gone) it observes and sends
as the `session.agent_joined` / `session.agent_left` event the lost webhook would have made.
"""

from __future__ import annotations

import heapq
import logging
from datetime import UTC, datetime

import anyio

from ..errors import GatewayError
from ..livekit import api
from ..livekit.rooms import LiveKitRooms, RoomNotFound
from . import events
from .closer import SessionCloser
from .event_outbox import EventOutbox
from .lifecycle import AGENT, agent_due_at, seen_joining, started_at
from .observations import Change, Observations
from .record import Observed, SessionRecord

logger = logging.getLogger("voice_gateway.sessions")  # pinned: logs know it by this name

CHECKS_AT_ONCE = 8  # timers due together ask LiveKit this many at a time


class AgentWatch:
    def __init__(
        self,
        rooms: LiveKitRooms,
        observations: Observations,
        closer: SessionCloser,
        timeout_s: int,
        prefix: str,
        outbox: EventOutbox,
    ) -> None:
        self._rooms = rooms
        self._outbox = outbox
        self._observations = observations
        self._closer = closer
        self._timeout_s = timeout_s
        self._prefix = prefix
        # One sleeping task for all timers, not one per session: a heap of (due, room name),
        # and each room's latest due time (a timer no longer there, or since moved, is stale).
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}
        self._earlier = anyio.Event()
        self._checking = anyio.CapacityLimiter(CHECKS_AT_ONCE)

    def watch(self, record: SessionRecord, room_started_at: datetime) -> None:
        """Check on the agent when it is due, by what was observed of it."""
        due = agent_due_at(record, room_started_at, self._timeout_s)
        room_name = record.room_name(self._prefix)
        if due is None:  # the agent came: no timer until it is seen leaving
            self._due.pop(room_name, None)
            return
        if self._due.get(room_name) == due:
            return
        self._due[room_name] = due
        heapq.heappush(self._heap, (due, room_name))
        if self._heap[0] == (due, room_name):
            self._earlier.set()

    async def run(self) -> None:
        """The timers, until the lifespan's task group is cancelled."""
        async with anyio.create_task_group() as checks:
            while True:
                for room_name in await self._next_due():
                    checks.start_soon(self._check_room_limited, room_name)

    async def _check_room_limited(self, room_name: str) -> None:
        # A burst of timers (agents down, a spike of sessions) asks LiveKit a few at a time.
        async with self._checking:
            try:
                await self._check_room(room_name)
            except Exception:  # one bad check must not end the timers for the process
                logger.exception("checking on the agent of %s failed", room_name)

    async def check_if_due(self, record: SessionRecord, room_started_at: datetime) -> None:
        """End the session if its agent is overdue and LiveKit confirms it is not there."""
        due = agent_due_at(record, room_started_at, self._timeout_s)
        if due is None:
            return
        if datetime.now(UTC) < due:  # a timer set from the record, before the room's own start
            self.watch(record, room_started_at)
            return
        room_name = record.room_name(self._prefix)
        try:
            participants = await self._rooms.participants(room_name)
        except RoomNotFound:
            return
        agent = next((p for p in participants if p.kind == AGENT), None)
        if agent is None:
            await self._closer.close(record, "agent_failed")
            return
        # There after all, its webhook lost: say so, so it is not checked again.
        noticed = await self._observations.changed(room_name, _joined(agent))
        if noticed is not None and (joined := events.joined_unreported(noticed, room_name, agent)):
            await self._outbox.emit_settled(joined)  # observed: the gap is not found again

    async def check_still_there(self, record: SessionRecord, room_started_at: datetime) -> None:
        """For an agent seen in the room: if LiveKit no longer lists it, it left unreported
        (its webhook lost), and its return is due from now."""
        room_name = record.room_name(self._prefix)
        participants = await self._rooms.participants(room_name)
        if participants and not any(p.kind == AGENT for p in participants):
            left = await self._observations.changed(room_name, _left_unseen)
            if left is not None and left.observed.agent_left_at is not None:
                at = left.observed.agent_left_at
                if gone := events.left_unreported(left, room_name, "agent", at, None):
                    await self._outbox.emit_settled(gone)
                self.watch(left, room_started_at)

    async def _next_due(self) -> list[str]:
        """Sleep until the earliest timer (or one set earlier), then the rooms now due."""
        wait_s = (self._heap[0][0] - datetime.now(UTC)).total_seconds() if self._heap else 3600
        with anyio.move_on_after(wait_s):
            await self._earlier.wait()
        self._earlier = anyio.Event()
        now, due = datetime.now(UTC), []
        while self._heap and self._heap[0][0] <= now:
            at, room_name = heapq.heappop(self._heap)
            if self._due.get(room_name) == at:
                del self._due[room_name]
                due.append(room_name)
        return due

    async def _check_room(self, room_name: str) -> None:
        try:
            found = await self._observations.read(room_name)
            if found is not None:
                room, record = found
                await self.check_if_due(record, started_at(room))
        except GatewayError as exc:
            logger.warning("could not check on the agent of %s: %s", room_name, exc.detail)


def _left_unseen(record: SessionRecord) -> Observed:
    observed = record.observed
    if observed.agent_left_at is not None:
        return observed
    return observed.model_copy(update={"agent_left_at": datetime.now(UTC)})


def _joined(agent: api.ParticipantInfo) -> Change:
    return lambda record: seen_joining(record.observed, record, agent)

"""`"wait_for_agent": true`: the create answers once the agent is in the room.

The gateway asks LiveKit every quarter second (ListParticipants; once a second also ListRooms for
the room and its end mark, in case another path ended the session, and ListDispatch, for a job
that failed), so the answer comes within ~300 ms of the join at about six calls a second; sooner
when this replica hears the join's webhook, which wakes the waiter at once. An agent that does
not come in time, or whose job failed, ends the session (`agent_failed`), so no agent arrives
later into a room its client has given up on.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import anyio

from ..errors import AgentUnavailable, GatewayError, SessionEnded
from ..livekit import api
from ..livekit.rooms import LiveKitRooms
from .lifecycle import AGENT, joined_at

logger = logging.getLogger("voice_gateway.sessions")  # pinned: logs know it by this name

POLL_S = 0.25
ROOM_EVERY = 4  # polls between two looks at the room, its end mark and the dispatch

ListDispatch = Callable[[str], Awaitable[list[api.AgentDispatch]]]


@dataclass(frozen=True)
class WaitedSession:
    room_name: str
    mark_name: str  # its end mark's room (endings.py): made when another path ends it
    agent_name: str


@dataclass(frozen=True)
class JoinedAgent:
    identity: str
    joined_at: datetime


class AgentArrivals:
    """Wakes whoever waits for a room's agent when this replica hears of its join. A waiter is
    registered for its whole wait, so a join heard while it is asking LiveKit is not lost: its
    next pause ends at once."""

    def __init__(self) -> None:
        self._heard: dict[str, anyio.Event] = {}

    def arrived(self, room_name: str) -> None:
        if (heard := self._heard.get(room_name)) is not None:
            heard.set()

    @contextmanager
    def awaited(self, room_name: str) -> Iterator[None]:
        self._heard[room_name] = anyio.Event()
        try:
            yield
        finally:
            self._heard.pop(room_name, None)

    async def pause(self, room_name: str, seconds: float) -> None:
        """Sleep `seconds`, or less if the room's agent is heard of meanwhile (or was since the
        last pause)."""
        heard = self._heard.setdefault(room_name, anyio.Event())
        with anyio.move_on_after(seconds):
            await heard.wait()
        if heard.is_set():
            self._heard[room_name] = anyio.Event()


class AgentWait:
    def __init__(
        self, rooms: LiveKitRooms, list_dispatch: ListDispatch, arrivals: AgentArrivals
    ) -> None:
        self._rooms = rooms
        self._list_dispatch = list_dispatch
        self._arrivals = arrivals

    async def until_joined(self, session: WaitedSession) -> JoinedAgent:
        """The agent once it is in the room; raises AgentUnavailable when its job failed,
        SessionEnded when the session ended meanwhile. The caller bounds the wait."""
        with self._arrivals.awaited(session.room_name):
            for poll in itertools.count(1):
                agent = await self._agent_in(session, poll % ROOM_EVERY == 0)
                if agent is not None:
                    return agent
                await self._arrivals.pause(session.room_name, POLL_S)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _agent_in(self, session: WaitedSession, look_at_room: bool) -> JoinedAgent | None:
        try:
            participants = await self._rooms.participants(session.room_name)
            if look_at_room:
                await self._raise_if_over(session)
        except (AgentUnavailable, SessionEnded):
            raise
        except GatewayError as exc:  # one failed look: the next may answer, the deadline holds
            logger.info("waiting for the agent of %s: %s", session.room_name, exc.detail)
            return None
        agent = next((p for p in participants if p.kind == AGENT), None)
        return JoinedAgent(agent.identity, joined_at(agent)) if agent else None

    async def _raise_if_over(self, session: WaitedSession) -> None:
        """SessionEnded when the session ended meanwhile (another path did: ListParticipants of a
        missing room is just empty); AgentUnavailable when its job failed."""
        found = await self._rooms.find_many([session.room_name, session.mark_name])
        if session.room_name not in found or session.mark_name in found:
            raise SessionEnded("The session ended while it waited for its agent")
        # Only for a room that exists: for a missing one LiveKit takes 3 s to say so.
        _raise_if_failed(await self._list_dispatch(session.room_name), session.agent_name)


def _raise_if_failed(dispatches: list[api.AgentDispatch], agent_name: str) -> None:
    for dispatch in dispatches:
        for job in dispatch.state.jobs if dispatch.agent_name == agent_name else ():
            if job.state.status == api.JobStatus.JS_FAILED:
                raise AgentUnavailable(f"The agent {agent_name!r} could not take the session")

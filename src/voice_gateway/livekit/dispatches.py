"""LiveKit's AgentDispatchService, as the gateway reads it: which agents a room was dispatched
and how far their jobs got. Every call goes through `LiveKitCalls`, like RoomService's.

What the real server answers (docs/livekit-observed.md, "Agent dispatch"): one dispatch per agent
asked for (one with an empty agent name for a room created without any), no job until a worker
took it, then one job JS_RUNNING naming the agent's participant identity; a room that does not
exist is a 503 after about 3 s, not a 404, which the caller sees as an empty list.
"""

from __future__ import annotations

from . import api
from .calls import AGENT_DISPATCH_SERVICE, LiveKitCalls, RoomNotFound


class LiveKitDispatches:
    def __init__(self, calls: LiveKitCalls) -> None:
        self._call = calls

    async def list_dispatch(self, room_name: str) -> list[api.AgentDispatch]:
        """The room's agent dispatches with their jobs; [] when the room does not exist.

        LiveKit wants roomAdmin for that very room. A missing room costs LiveKit's own 3 s
        (psrpc's timeout) when `VOICE_GATEWAY_LIVEKIT_TIMEOUT_S` allows it: ask ListRooms first
        when the room may be gone."""

        request = api.ListAgentDispatchRequest(room=room_name)
        answer = api.ListAgentDispatchResponse
        try:
            listed = await self._call(
                "ListDispatch", request, answer, room_name, AGENT_DISPATCH_SERVICE
            )
        except RoomNotFound:
            return []
        return list(listed.agent_dispatches)

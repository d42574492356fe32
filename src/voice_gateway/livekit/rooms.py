"""LiveKit's RoomService, as the gateway uses it: every call through `LiveKitCalls` (awaited,
bounded by a deadline, errors translated, timed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ..errors import LiveKitError
from ..ops.metrics import Metrics
from ..settings import Settings
from . import api
from .api_tokens import ServiceTokens
from .calls import LiveKitCalls, RoomNotFound
from .twirp_pool import TwirpPool

__all__ = ["READINESS_PROBE_ROOM", "LiveKitRooms", "RoomNotFound", "open_livekit_calls"]

# A name no gateway room can have (prefixes allow no "_"): asking for it exercises the
# credentials and the roomList grant without listing every room on the server.
READINESS_PROBE_ROOM = "_voice-gateway-readiness-probe"


class LiveKitRooms:
    def __init__(self, calls: LiveKitCalls) -> None:
        self._call = calls

    async def create(self, request: api.CreateRoomRequest) -> api.Room:
        room = await self._call("CreateRoom", request, api.Room)
        if room.name != request.name or not room.sid:
            # Any 200 parses as a Room: an empty one, or another room's, is not this room.
            raise LiveKitError("LiveKit answered CreateRoom without the room asked for")
        return room

    async def find(self, name: str) -> api.Room | None:
        return (await self.find_many([name])).get(name)

    async def find_many(self, names: list[str]) -> dict[str, api.Room]:
        """Those of the named rooms that exist, by name, in one call."""
        request = api.ListRoomsRequest(names=names)
        response = await self._call("ListRooms", request, api.ListRoomsResponse)
        return {room.name: room for room in response.rooms if room.name in names}

    async def list_all(self) -> list[api.Room]:
        request = api.ListRoomsRequest()
        response = await self._call("ListRooms", request, api.ListRoomsResponse)
        return list(response.rooms)

    async def delete(self, name: str) -> None:
        """Delete a room; raises RoomNotFound when it is already gone."""
        request = api.DeleteRoomRequest(room=name)
        await self._call("DeleteRoom", request, api.DeleteRoomResponse)

    async def update_metadata(self, name: str, metadata: str) -> api.Room:
        """Replace a room's metadata; raises RoomNotFound when the room is gone."""
        request = api.UpdateRoomMetadataRequest(room=name, metadata=metadata)
        # LiveKit wants roomAdmin for that very room, like the participant calls.
        return await self._call("UpdateRoomMetadata", request, api.Room, name)

    async def participants(self, name: str) -> list[api.ParticipantInfo]:
        request = api.ListParticipantsRequest(room=name)
        response = await self._call("ListParticipants", request, api.ListParticipantsResponse, name)
        return list(response.participants)

    async def check_access(self) -> None:
        """Raise unless LiveKit answers and accepts the gateway's credentials."""
        await self.find(READINESS_PROBE_ROOM)


@asynccontextmanager
async def open_livekit_calls(
    settings: Settings, limiter: anyio.CapacityLimiter, metrics: Metrics
) -> AsyncIterator[LiveKitCalls]:
    """The app's one connection pool to LiveKit, sized by the settings."""
    pool = TwirpPool(settings.livekit_url, settings.livekit_max_connections)
    tokens = ServiceTokens(settings.livekit_api_key, settings.livekit_api_secret, limiter)
    try:
        yield LiveKitCalls(pool, settings, tokens, metrics)
    finally:
        await pool.aclose()

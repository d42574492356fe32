"""A LiveKit backend as a test sees it: where its API is, and its rooms read through the SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livekit import api

from tests.support.gateway import make_settings_for
from tests.support.keys import API_KEY, API_SECRET
from tests.support.polling import poll_until
from voice_gateway.settings import Settings


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    gateway_port: int  # where LiveKit sends its webhooks: serve the gateway here to get them

    def settings(self, **overrides: Any) -> Settings:
        return make_settings_for(self.url, **overrides)

    async def rooms(self) -> dict[str, api.Room]:
        async with api.LiveKitAPI(self.url, API_KEY, API_SECRET) as livekit:
            listed = await livekit.room.list_rooms(api.ListRoomsRequest())
        return {room.name: room for room in listed.rooms}

    async def wait_until_gone(self, name: str, timeout_s: float = 5) -> None:
        async def gone() -> bool:
            return name not in await self.rooms()

        await poll_until(gone, timeout_s)

    async def create_room(self, name: str, metadata: str) -> None:
        async with api.LiveKitAPI(self.url, API_KEY, API_SECRET) as livekit:
            await livekit.room.create_room(api.CreateRoomRequest(name=name, metadata=metadata))

    async def delete_room(self, name: str) -> None:
        async with api.LiveKitAPI(self.url, API_KEY, API_SECRET) as livekit:
            await livekit.room.delete_room(api.DeleteRoomRequest(room=name))

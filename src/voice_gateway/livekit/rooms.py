"""LiveKit's RoomService, as the gateway uses it: awaited, bounded by a deadline, errors translated.

`livekit-api`'s RoomService methods are coroutines over aiohttp, so they are awaited on the event
loop, never pushed to a thread. Every call runs under `anyio.fail_after`, and every way it can fail
(refused connection, deadline, an error answer) becomes one of the gateway's domain errors, so no
aiohttp or Twirp exception ever reaches a handler.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import aiohttp
import anyio
from google.protobuf.message import DecodeError
from livekit import api

from ..errors import GatewayError, LiveKitError, LiveKitTimeout, LiveKitUnavailable
from ..ops.metrics import Metrics
from ..settings import Settings
from .api_tokens import ServiceTokens

T = TypeVar("T")
RoomCall = Callable[["api.room_service.RoomService"], Awaitable[T]]

# A name no gateway room can have (prefixes allow no "_"): asking for it exercises the
# credentials and the roomList grant without listing every room on the server.
READINESS_PROBE_ROOM = "_voice-gateway-readiness-probe"


class RoomNotFound(Exception):
    """LiveKit answered `not_found`: the room (or participant) does not exist."""


class LiveKitRooms:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        tokens: ServiceTokens,
        metrics: Metrics,
    ) -> None:
        self._session = session
        self._url = settings.livekit_url
        self._timeout_s = settings.livekit_timeout_s
        self._tokens = tokens
        self._metrics = metrics
        self._livekit: api.LiveKitAPI | None = None
        self._livekit_token = ""

    async def create(self, request: api.CreateRoomRequest) -> api.Room:
        return await self._call("CreateRoom", lambda rooms: rooms.create_room(request))

    async def find(self, name: str) -> api.Room | None:
        request = api.ListRoomsRequest(names=[name])
        response = await self._call("ListRooms", lambda rooms: rooms.list_rooms(request))
        return next((room for room in response.rooms if room.name == name), None)

    async def list_all(self) -> list[api.Room]:
        request = api.ListRoomsRequest()
        response = await self._call("ListRooms", lambda rooms: rooms.list_rooms(request))
        return list(response.rooms)

    async def delete(self, name: str) -> None:
        """Delete a room; raises RoomNotFound when it is already gone."""
        request = api.DeleteRoomRequest(room=name)
        await self._call("DeleteRoom", lambda rooms: rooms.delete_room(request))

    async def update_metadata(self, name: str, metadata: str) -> api.Room:
        """Replace a room's metadata; raises RoomNotFound when the room is gone."""
        request = api.UpdateRoomMetadataRequest(room=name, metadata=metadata)
        call = "UpdateRoomMetadata"  # LiveKit wants roomAdmin for that very room, like participants
        return await self._call(call, lambda rooms: rooms.update_room_metadata(request), name)

    async def participants(self, name: str) -> list[api.ParticipantInfo]:
        request = api.ListParticipantsRequest(room=name)
        call = "ListParticipants"
        response = await self._call(call, lambda rooms: rooms.list_participants(request), name)
        return list(response.participants)

    async def check_access(self) -> None:
        """Raise unless LiveKit answers and accepts the gateway's credentials."""
        await self.find(READINESS_PROBE_ROOM)

    async def _call(self, method: str, call: RoomCall[T], admin_of_room: str | None = None) -> T:
        started, outcome = time.perf_counter(), "ok"
        try:
            with anyio.fail_after(self._timeout_s):
                room_service = await self._room_service(admin_of_room)
                return await self._translated(call(room_service))
        except TimeoutError as exc:
            outcome = "livekit_timeout"
            raise LiveKitTimeout(f"LiveKit did not answer within {self._timeout_s:g} s") from exc
        except (GatewayError, RoomNotFound) as exc:
            outcome = "not_found" if isinstance(exc, RoomNotFound) else exc.code
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.livekit_calls.labels(method, outcome).observe(elapsed)

    async def _room_service(self, admin_of_room: str | None) -> api.room_service.RoomService:
        """The SDK's RoomService over the shared pool, carrying a token signed off the loop."""
        if admin_of_room is not None:
            token = await self._tokens.room_admin_token(admin_of_room)
            return self._client(token).room
        token = await self._tokens.service_token()
        if self._livekit is None or self._livekit_token != token:
            self._livekit, self._livekit_token = self._client(token), token
        return self._livekit.room

    def _client(self, token: str) -> api.LiveKitAPI:
        # A view over the shared session: no pool of its own, nothing to close.
        return api.LiveKitAPI.with_token(token, self._url, session=self._session, failover=False)

    async def _translated(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except TimeoutError:
            raise  # aiohttp's timeouts are ClientErrors too, but they mean a deadline passed
        except aiohttp.ClientError as exc:
            raise LiveKitUnavailable(f"LiveKit could not be reached: {type(exc).__name__}") from exc
        except api.ServerError as exc:
            raise _translate_server_error(exc) from exc
        except DecodeError as exc:
            raise LiveKitError(
                "LiveKit answered with a body that is not a RoomService message"
            ) from exc


def _translate_server_error(exc: api.ServerError) -> Exception:
    if exc.code == "not_found":
        return RoomNotFound(exc.message)
    if exc.status == 401:
        return LiveKitError("LiveKit rejected the gateway's API key or secret (HTTP 401)")
    return LiveKitError(f"LiveKit answered HTTP {exc.status} ({exc.code})")


@asynccontextmanager
async def open_livekit_rooms(
    settings: Settings, limiter: anyio.CapacityLimiter, metrics: Metrics
) -> AsyncIterator[LiveKitRooms]:
    """The app's one connection pool to LiveKit, sized by the settings.

    aiohttp's default pool holds 100 connections, which would queue requests far below what the
    thread limiter and the server allow. The SDK never closes a session it did not create.
    """
    connector = aiohttp.TCPConnector(limit=settings.livekit_max_connections)
    timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_s + 1)
    tokens = ServiceTokens(settings.livekit_api_key, settings.livekit_api_secret, limiter)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield LiveKitRooms(session, settings, tokens, metrics)

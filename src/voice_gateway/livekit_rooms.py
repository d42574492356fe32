"""LiveKit's RoomService, as the gateway uses it: awaited, bounded by a deadline, errors translated.

`livekit-api`'s RoomService methods are coroutines over aiohttp, so they are awaited on the event
loop, never pushed to a thread. Every call runs under `anyio.fail_after`, and every way it can fail
(refused connection, deadline, an error answer) becomes one of the gateway's domain errors, so no
aiohttp or Twirp exception ever reaches a handler.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import aiohttp
import anyio
from google.protobuf.message import DecodeError
from livekit import api

from .errors import GatewayError, LiveKitError, LiveKitTimeout, LiveKitUnavailable
from .metrics import Metrics
from .settings import Settings

T = TypeVar("T")

# A name no gateway room can have (prefixes allow no "_"): asking for it exercises the
# credentials and the roomList grant without listing every room on the server.
READINESS_PROBE_ROOM = "_voice-gateway-readiness-probe"


class RoomNotFound(Exception):
    """LiveKit answered `not_found`: the room (or participant) does not exist."""


class LiveKitRooms:
    def __init__(self, livekit: api.LiveKitAPI, timeout_s: float, metrics: Metrics) -> None:
        self._room_service = livekit.room
        self._timeout_s = timeout_s
        self._metrics = metrics

    async def create(self, request: api.CreateRoomRequest) -> api.Room:
        return await self._call("CreateRoom", self._room_service.create_room(request))

    async def find(self, name: str) -> api.Room | None:
        request = api.ListRoomsRequest(names=[name])
        response = await self._call("ListRooms", self._room_service.list_rooms(request))
        return next((room for room in response.rooms if room.name == name), None)

    async def list_all(self) -> list[api.Room]:
        response = await self._call(
            "ListRooms", self._room_service.list_rooms(api.ListRoomsRequest())
        )
        return list(response.rooms)

    async def delete(self, name: str) -> None:
        """Delete a room; raises RoomNotFound when it is already gone."""
        request = api.DeleteRoomRequest(room=name)
        await self._call("DeleteRoom", self._room_service.delete_room(request))

    async def participants(self, name: str) -> list[api.ParticipantInfo]:
        request = api.ListParticipantsRequest(room=name)
        response = await self._call(
            "ListParticipants", self._room_service.list_participants(request)
        )
        return list(response.participants)

    async def check_access(self) -> None:
        """Raise unless LiveKit answers and accepts the gateway's credentials."""
        await self.find(READINESS_PROBE_ROOM)

    async def _call(self, method: str, call: Awaitable[T]) -> T:
        started, outcome = time.perf_counter(), "ok"
        try:
            return await self._translated(call)
        except (GatewayError, RoomNotFound) as exc:
            outcome = "not_found" if isinstance(exc, RoomNotFound) else exc.code
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.livekit_calls.labels(method, outcome).observe(elapsed)

    async def _translated(self, call: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self._timeout_s):
                return await call
        except TimeoutError as exc:
            raise LiveKitTimeout(f"LiveKit did not answer within {self._timeout_s:g} s") from exc
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
async def open_livekit_api(settings: Settings) -> AsyncIterator[api.LiveKitAPI]:
    """One LiveKitAPI for the app's lifetime, over a pool sized by the settings.

    aiohttp's default pool holds 100 connections, which would queue requests far below what the
    thread limiter and the server allow; we pass our own session, so we also close it ourselves.
    """
    connector = aiohttp.TCPConnector(limit=settings.livekit_max_connections)
    timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_s + 1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        livekit = api.LiveKitAPI(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            session=session,
            failover=False,
        )
        try:
            yield livekit
        finally:
            await livekit.aclose()

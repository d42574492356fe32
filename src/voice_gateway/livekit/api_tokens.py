"""The gateway's own tokens for RoomService calls, signed in worker threads, not on the loop.

Left to itself, `livekit-api` signs a fresh JWT with `AccessToken.to_jwt` inside every
RoomService coroutine, on the event loop (a large share of the loop's time under load: see
bench/README.md, measured decisions). The gateway signs them in the thread pool instead: one
service token (create, list, delete rooms), cached and re-signed at half its lifetime, and a
room-scoped admin token for the calls LiveKit checks against one room.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial

import anyio
from pydantic import SecretStr

from . import api

SERVICE_TOKEN_TTL = timedelta(minutes=10)
ADMIN_TOKEN_TTL = timedelta(minutes=1)


class ServiceTokens:
    def __init__(self, api_key: str, api_secret: SecretStr, limiter: anyio.CapacityLimiter):
        self._api_key = api_key
        self._api_secret = api_secret
        self._limiter = limiter
        self._lock = anyio.Lock()
        self._service_token = ""
        self._renew_at = 0.0

    async def service_token(self) -> str:
        """For CreateRoom, DeleteRoom (roomCreate) and ListRooms (roomList)."""
        if time.monotonic() >= self._renew_at:
            async with self._lock:  # one signer renews; the others wait and reuse its token
                if time.monotonic() >= self._renew_at:
                    grants = api.VideoGrants(room_create=True, room_list=True)
                    self._service_token = await self._sign(grants, SERVICE_TOKEN_TTL)
                    self._renew_at = time.monotonic() + SERVICE_TOKEN_TTL.total_seconds() / 2
        return self._service_token

    async def room_admin_token(self, room_name: str) -> str:
        """For participant calls, which LiveKit allows only with roomAdmin for that very room."""
        return await self._sign(api.VideoGrants(room_admin=True, room=room_name), ADMIN_TOKEN_TTL)

    async def _sign(self, grants: api.VideoGrants, ttl: timedelta) -> str:
        return await anyio.to_thread.run_sync(
            partial(self._sign_blocking, grants, ttl), limiter=self._limiter
        )

    def _sign_blocking(self, grants: api.VideoGrants, ttl: timedelta) -> str:
        token = api.AccessToken(self._api_key, self._api_secret.get_secret_value())
        return token.with_grants(grants).with_ttl(ttl).to_jwt()

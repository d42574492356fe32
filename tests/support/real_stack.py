"""The real stack as a test sees it: the real server (in its namespace), the example agent, and a
gateway in front of them served on the port the server's webhooks go to."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from livekit import api

from tests.support.agent_worker import AgentWorker
from tests.support.gateway import make_settings_for, serving_gateway
from tests.support.keys import API_KEY, API_SECRET
from tests.support.livekit_backend import Backend
from tests.support.livekit_server import LiveKitServer
from tests.support.netns import Namespace
from tests.support.polling import poll_until
from voice_gateway.settings import Settings

AGENT_NAME = "e2e-agent"
WEBHOOK_PATH = "/api/voice/webhook"


@dataclass(frozen=True)
class RealStack:
    namespace: Namespace
    server: LiveKitServer
    agent: AgentWorker
    gateway_port: int

    @property
    def livekit(self) -> Backend:
        """The server as the both-backends tests see it: its rooms, waiting for one to go."""
        return Backend("livekit-server", self.server.url, self.gateway_port)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"allowed_agents": [AGENT_NAME], "livekit_timeout_s": 5.0}
        return make_settings_for(self.server.url, **(values | overrides))

    @asynccontextmanager
    async def gateway(self, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        """The gateway serving over HTTP where the server's webhooks reach it."""
        settings = self.settings(**overrides)
        host = self.namespace.outer_address
        async with (
            serving_gateway(settings, self.gateway_port, host) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield client

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        async with api.LiveKitAPI(self.server.url, API_KEY, API_SECRET) as livekit:
            try:
                listed = await livekit.room.list_participants(
                    api.ListParticipantsRequest(room=room)
                )
            except api.TwirpError as error:
                if error.code == api.TwirpErrorCode.NOT_FOUND:
                    return []
                raise
        return list(listed.participants)

    async def wait_for_agent_in(self, room: str, timeout_s: float) -> float:
        """Seconds until an AGENT participant is in `room` (asked of the server itself)."""
        started = time.monotonic()

        async def agent_is_there() -> bool:
            kinds = [participant.kind for participant in await self.participants(room)]
            return api.ParticipantInfo.Kind.AGENT in kinds

        await poll_until(agent_is_there, timeout_s)
        return time.monotonic() - started

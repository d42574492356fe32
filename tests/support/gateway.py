"""The gateway under test: its settings over the stand-in, and the app running with its lifespan,
in process (httpx's ASGI transport) or as a real uvicorn on a free loopback port.

The gateway reaches the stand-in through the real `livekit-api` client over real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from tests.support.keys import API_KEY, API_SECRET
from tests.support.processes import bound_listener
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn
from voice_gateway.web.app import create_app

SESSION_BODY = {"user_id": "nate", "agent_id": "pm-agent", "session_duration_hours": 2}


def make_settings(standin: StandIn, **overrides: Any) -> Settings:
    return make_settings_for(standin.url, **overrides)


def make_settings_for(livekit_url: str, **overrides: Any) -> Settings:
    """The gateway's settings over the LiveKit at `livekit_url`, with the tests' key pair."""
    values: dict[str, Any] = {
        "livekit_url": livekit_url,
        "livekit_api_key": API_KEY,
        "livekit_api_secret": API_SECRET,
        "livekit_timeout_s": 1.0,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app(settings)) as client:
        yield client


@asynccontextmanager
async def running_app(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """An app built by the test (routes added or changed), lifespan running, in process."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@asynccontextmanager
async def serving(app: ASGIApp, port: int = 0, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """An ASGI app as a real uvicorn server on loopback (a free port unless `port` is given), in
    the test's loop; yields its base URL. Lifespan on, no access log, logging left alone."""
    sock = bound_listener(host, port)
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_config=None, ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped while starting")
                await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@asynccontextmanager
async def serving_gateway(
    settings: Settings, port: int = 0, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """The gateway as a real server (for clients that need a socket)."""
    async with serving(create_app(settings), port, host) as url:
        yield url


@asynccontextmanager
async def gateway_over_http(
    standin: StandIn, *, webhooks: bool, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway served on loopback and a client of it; with `webhooks`, the stand-in's webhooks
    go to it (a test using that also uses the `webhooks_off_afterwards` fixture)."""
    async with serving_gateway(make_settings(standin, **overrides)) as url:
        if webhooks:
            standin.set_webhook_urls([f"{url}/api/voice/webhook"])
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


async def create_session(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/voice/session", json=SESSION_BODY | fields)


async def metric(client: httpx.AsyncClient, line_start: str) -> float:
    """The sum of the /metrics samples whose line starts with `line_start`."""
    text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )

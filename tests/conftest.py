"""Shared fixtures: a real LiveKit stand-in on a free loopback port, and the gateway app over it.

The gateway runs with its lifespan (asgi-lifespan) and is called over httpx's ASGI transport; it
reaches the stand-in through the real `livekit-api` client over real sockets.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import respx
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn
from voice_gateway.web.app import create_app

API_KEY = "test-key"
API_SECRET = "test-secret-long-enough-for-hs256-0123456789"
# A caller's service key (VOICE_GATEWAY_API_KEYS), and the header that presents it.
SERVICE_KEY = "svc-key-for-tests-0123456789abcdef"
SERVICE_AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}
GatewayFactory = Callable[..., Any]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Neither the developer's environment nor a `.env` file may change what a test sees."""
    for name in list(os.environ):
        if name.startswith(("VOICE_GATEWAY_", "LIVEKIT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    server = StandIn(API_KEY, API_SECRET, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_standin(standin: StandIn) -> Iterator[None]:
    standin.clear_faults()
    yield
    standin.clear_faults()
    standin.accept_connections()


def make_settings(standin: StandIn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "livekit_url": standin.url,
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


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout_s`. Polled, not an
    event: what it watches changes on other threads and loops (the stand-in's, uvicorn's)."""
    with anyio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """An ASGI app as a real uvicorn server on a free loopback port, in the test's loop;
    yields its base URL. Lifespan on, no access log, the process's logging left alone."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
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
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@asynccontextmanager
async def serving_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway as a real server on a free port (for clients that need a socket)."""
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
def settings(standin: StandIn) -> Settings:
    return make_settings(standin)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(settings) as gateway:
        yield gateway


SESSION_BODY = {"user_id": "nate", "agent_id": "pm-agent", "session_duration_hours": 2}


async def create_session(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/voice/session", json=SESSION_BODY | fields)


@pytest.fixture
def idp() -> Iterator[respx.Router]:
    """A fake identity provider whose JWKS serves key `k1` (respx: httpx calls only)."""
    from .identity_provider import JWKS_URL, jwks, signing_key  # it imports this module

    with respx.mock(assert_all_called=False) as router:
        router.get(JWKS_URL, name="jwks").mock(
            return_value=httpx.Response(200, json=jwks(signing_key("k1")))
        )
        yield router

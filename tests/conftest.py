"""Fixtures only: a real LiveKit stand-in on a free loopback port, and the gateway app over it.
The helpers they use live in `tests/support/`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from tests.support.event_receiver import RECEIVERS
from tests.support.gateway import make_settings, running_gateway
from tests.support.identity_provider import JWKS_URL, jwks, signing_key
from tests.support.keys import API_KEY, API_SECRET
from tests.support.redis_server import redis_server
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn


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
    standin.agents.reset()  # a test's agent workers serve that test only
    standin.accept_connections()
    # A test's rooms are its own: an end mark (sessions/endings.py) would outlive the test by
    # minutes, and a session left behind would be ended by the next test's sweep (its agent
    # overdue: agent_watch.py), counted in that test's metrics.
    for room in standin.state.store.list_rooms():
        standin.state.store.delete_room(room.name)


@pytest.fixture(autouse=True)
def _events_match_their_schemas() -> Iterator[None]:
    """Every event any receiver of the test was sent matches its type's JSON Schema
    (docs/events/schemas/): the published shapes are held to what is actually sent."""
    RECEIVERS.clear()
    yield
    off_schema = [error for receiver in RECEIVERS for error in receiver.off_schema]
    RECEIVERS.clear()
    assert off_schema == [], off_schema


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the module's tests (skipped where none is installed)."""
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server.url


@pytest.fixture
def settings(standin: StandIn) -> Settings:
    return make_settings(standin)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(settings) as gateway:
        yield gateway


@pytest.fixture
def idp() -> Iterator[respx.Router]:
    """A fake identity provider whose JWKS serves key `k1` (respx: httpx calls only)."""
    with respx.mock(assert_all_called=False) as router:
        router.get(JWKS_URL, name="jwks").mock(
            return_value=httpx.Response(200, json=jwks(signing_key("k1")))
        )
        yield router


@pytest.fixture
def webhooks_off_afterwards(standin: StandIn) -> Iterator[None]:
    """For a test that points the stand-in's webhooks at a gateway of its own."""
    yield
    standin.set_webhook_urls([])

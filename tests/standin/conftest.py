"""One stand-in per test module, reset before every test, driven over real sockets.

The SDK client is built inside each test's own loop (it cannot be built outside one) and is
closed after the test; the stand-in runs on its own thread and loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from livekit.api import LiveKitAPI

from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import StandIn


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn(API_KEY, API_SECRET) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_standin(standin: StandIn) -> Iterator[None]:
    standin.accept_connections()
    standin.reset()
    yield
    standin.clear_faults()


@pytest.fixture
async def lk(standin: StandIn) -> AsyncIterator[LiveKitAPI]:
    client = LiveKitAPI(standin.url, API_KEY, API_SECRET)
    yield client
    await client.aclose()


@pytest.fixture
async def http(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=standin.url) as client:
        yield client

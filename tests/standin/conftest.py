"""One stand-in per test module, reset before every test, driven over real sockets.

The SDK client is built inside each test's own loop (it cannot be built outside one) and is
closed after the test; the stand-in runs on its own thread and loop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from livekit.api import LiveKitAPI

from voice_gateway.standin import StandIn

API_KEY = "devkey"
API_SECRET = "secret"
TWIRP = "/twirp/livekit.RoomService/"


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


def mint(video: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token as the SDK signs one (iss, nbf, exp, video); a claim given as None is left out."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": API_KEY, "nbf": now, "exp": now + 600, "video": video or {}}
    secret = claims.pop("secret", API_SECRET)
    sent = {name: value for name, value in (body | claims).items() if value is not None}
    return jwt.encode(sent, secret, algorithm="HS256")


def bearer(video: dict[str, Any] | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(video, **claims)}"}


CREATE = {"roomCreate": True}
LIST = {"roomList": True}


def admin(room: str) -> dict[str, Any]:
    return {"roomAdmin": True, "room": room}

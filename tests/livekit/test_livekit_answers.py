"""LiveKit answers of unexpected shape are 502s (503 with Retry-After when LiveKit sheds load),
never 500s: error bodies a proxy sends, a catch-all 200, another room's CreateRoom answer, and
participants newer than the locked livekit-protocol. The LiveKit side is a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from livekit import api
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.gateway import create_session, make_settings_for, running_gateway, serving
from voice_gateway.standin import StandIn

PROTOBUF = "application/protobuf"


def answering(status: int, body: bytes, media_type: str) -> Starlette:
    """A server that answers every request alike: a proxy, or a backend that is not LiveKit."""

    async def answer(request: Request) -> Response:
        return Response(body, status, media_type=media_type)

    return Starlette(routes=[Route("/{path:path}", answer, methods=["POST", "GET"])])


@pytest.fixture
async def gateway_before(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    status, body, media_type = request.param
    async with (
        serving(answering(status, body, media_type)) as url,
        running_gateway(make_settings_for(url)) as client,
    ):
        yield client


@pytest.mark.parametrize(
    "gateway_before",
    [(503, b'"busy"', "application/json"), (429, b'["slow down"]', "application/json")],
    indirect=True,
    ids=["503-string-body", "429-array-body"],
)
async def test_livekit_shedding_load_with_an_odd_body_is_a_503_with_retry_after(
    gateway_before: httpx.AsyncClient,
) -> None:
    response = await create_session(gateway_before)
    ready = await gateway_before.get("/readyz")

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "livekit_unavailable"
    assert response.headers["retry-after"] == "1"
    assert ready.status_code == 503


@pytest.mark.parametrize(
    "gateway_before", [(502, b'"bad gateway"', "application/json")], indirect=True
)
async def test_a_5xx_with_a_string_body_is_a_502(gateway_before: httpx.AsyncClient) -> None:
    response = await create_session(gateway_before)

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_error"


@pytest.mark.parametrize("gateway_before", [(200, b"", "text/html")], indirect=True)
async def test_a_catch_all_200_is_not_livekit(gateway_before: httpx.AsyncClient) -> None:
    response = await create_session(gateway_before)
    ready = await gateway_before.get("/readyz")

    assert response.status_code == 502
    assert "not LiveKit" in response.json()["detail"]
    assert ready.status_code == 503


OTHER_ROOM = api.Room(name="someone-elses-room", sid="RM_other").SerializeToString()


@pytest.mark.parametrize(
    "gateway_before",
    [(200, OTHER_ROOM, PROTOBUF), (200, b"", PROTOBUF), (200, b"\xff\xff\xff", PROTOBUF)],
    indirect=True,
    ids=["another-room", "empty-room", "not-a-message"],
)
async def test_a_create_room_answer_without_the_room_asked_for_is_a_502(
    gateway_before: httpx.AsyncClient,
) -> None:
    response = await create_session(gateway_before)

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_error"


async def test_participants_newer_than_our_protocol_are_shown_not_a_crash(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]
    newcomer = api.ParticipantInfo(identity="bridge-1", joined_at_ms=10**18)
    # Values a newer LiveKit sends, which our lock has no names for.
    newcomer.kind, newcomer.state = cast(Any, 97), cast(Any, 42)
    standin.state.store.add_participant(room_name, newcomer)

    response = await client.get(f"/api/voice/session/{room_name}")

    assert response.status_code == 200, response.text
    (shown,) = [p for p in response.json()["participants"] if p["identity"] == "bridge-1"]
    assert (shown["kind"], shown["state"], shown["joined_at"]) == ("97", "42", None)

"""Webhooks as the server sends them: signed bare JWT, sha256 of the exact body, camelCase
protojson, `application/webhook+json`, to every configured URL, in the order things happened."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import jwt
import pytest
from livekit.api import (
    CreateRoomRequest,
    DeleteRoomRequest,
    LiveKitAPI,
    TokenVerifier,
    WebhookReceiver,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.gateway import serving
from tests.support.polling import wait_until
from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import StandIn, WebhookDelivery


@dataclass
class Sink:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def sink(standin: StandIn) -> AsyncIterator[Sink]:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serving(app) as url:
        standin.set_webhook_urls([f"{url}/hook"])
        yield Sink(f"{url}/hook", received)
        standin.set_webhook_urls([])


@pytest.fixture(autouse=True)
def _no_webhook_urls_left(standin: StandIn) -> Iterator[None]:
    yield
    standin.set_webhook_urls([])


async def deliveries(standin: StandIn, count: int) -> list[WebhookDelivery]:
    await wait_until(lambda: len(standin.webhook_deliveries()) >= count)
    return standin.webhook_deliveries()


def events_of(found: list[WebhookDelivery]) -> list[str]:
    return [delivery.event for delivery in found]


async def test_a_created_room_is_announced_with_a_signed_room_started(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1", metadata="m"))
    await deliveries(standin, 1)

    headers, body = sink.received[0]
    event = json.loads(body)
    assert event["event"] == "room_started"
    assert (event["room"]["name"], event["room"]["metadata"]) == ("r1", "m")
    assert event["id"].startswith("EV_")
    assert isinstance(event["createdAt"], str)  # an int64, as protojson writes it
    assert headers["content-type"] == "application/webhook+json"


async def test_the_signature_is_a_bare_five_minute_jwt_over_the_exact_body(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    await deliveries(standin, 1)

    headers, body = sink.received[0]
    token = headers["authorization"]
    claims = jwt.decode(token, API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert not token.startswith("Bearer ")
    assert claims["exp"] - claims["nbf"] == 300
    assert base64.b64decode(claims["sha256"]) == hashlib.sha256(body).digest()


async def test_keys_are_lower_camel_case_with_defaults_omitted(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1", empty_timeout=30))
    await deliveries(standin, 1)

    room: dict[str, Any] = json.loads(sink.received[0][1])["room"]
    assert room["emptyTimeout"] == 30
    assert "creationTime" in room
    assert "empty_timeout" not in room
    assert "numParticipants" not in room  # zero, so omitted


async def test_the_sdk_webhook_receiver_accepts_what_the_standin_sends(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    await deliveries(standin, 1)

    headers, body = sink.received[0]
    event = WebhookReceiver(TokenVerifier(API_KEY, API_SECRET)).receive(
        body.decode(), headers["authorization"]
    )
    assert (event.event, event.room.name) == ("room_started", "r1")


async def test_a_room_lifecycle_is_told_in_order(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    standin.add_participant("r1", "nate")
    standin.remove_participant("r1", "nate")
    await lk.room.delete_room(DeleteRoomRequest(room="r1"))

    found = await deliveries(standin, 4)

    assert events_of(found) == [
        "room_started",
        "participant_joined",
        "participant_left",
        "room_finished",
    ]
    assert json.loads(found[1].body)["participant"]["identity"] == "nate"


async def test_deleting_an_occupied_room_tells_of_each_participant_leaving_first(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    standin.add_participant("r1", "nate")
    await lk.room.delete_room(DeleteRoomRequest(room="r1"))

    found = await deliveries(standin, 4)

    assert events_of(found)[2:] == ["participant_left", "room_finished"]


async def test_a_room_closed_for_idleness_is_told_finished(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1", empty_timeout=1))
    standin.close_idle_rooms(now=2**31)

    assert events_of(await deliveries(standin, 2)) == ["room_started", "room_finished"]


async def test_every_configured_url_receives_each_event(
    lk: LiveKitAPI, standin: StandIn, sink: Sink
) -> None:
    standin.set_webhook_urls([sink.url, sink.url + "?second"])
    await lk.room.create_room(CreateRoomRequest(name="r1"))

    found = await deliveries(standin, 2)

    assert [d.url for d in found] == [sink.url, sink.url + "?second"]
    assert all(d.status == 200 for d in found)


async def test_without_urls_nothing_is_sent(lk: LiveKitAPI, standin: StandIn) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    await anyio.sleep(0.1)

    assert standin.webhook_deliveries() == []


async def test_an_unreachable_url_is_recorded_and_the_server_carries_on(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    standin.set_webhook_urls([f"http://127.0.0.1:{port}/hook"])
    await lk.room.create_room(CreateRoomRequest(name="r1"))

    (delivery,) = await deliveries(standin, 1)

    assert (delivery.status, delivery.error) == (None, "ConnectError")
    assert standin.has_room("r1")

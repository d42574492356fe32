"""Upgrade offers the gateway declines (h2c from Java's HttpClient, Ktor, `curl --http2`) leave a
request served exactly as without the offer, over a real `voice-gateway serve`: the body read
whether it came with the head or in a second write, and the next pipelined request answered."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.gateway import SESSION_BODY
from tests.support.processes import AUTH, Gateway, serving
from tests.support.raw_http import exchange, request
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

H2C_OFFER = {
    "Connection": "Upgrade, HTTP2-Settings",
    "Upgrade": "h2c",
    "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
}
CLOSE = {"Connection": "close"}
OFFER_THEN_CLOSE = {"Connection": "Upgrade, HTTP2-Settings, close"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Gateway]:
    with serving(tmp_path_factory.mktemp("upgrade"), standin) as gateway:
        yield gateway
        gateway.stop()


def offered(path: str, body: dict[str, Any], **headers: str) -> tuple[bytes, bytes]:
    """The head (with the h2c offer) and the body of a JSON POST, apart."""
    encoded = json.dumps(body).encode()
    all_headers = {**H2C_OFFER, **AUTH, **JSON, "Content-Length": str(len(encoded)), **headers}
    return request("POST", path, headers=all_headers), encoded


def test_a_session_create_with_an_h2c_offer_reads_its_body(gateway: Gateway) -> None:
    head, body = offered("/api/voice/session", SESSION_BODY | {"user_id": "h2c-user"})

    created, health = exchange(
        gateway.port, head + body + request("GET", "/healthz", headers=CLOSE)
    )

    assert created.status == 201, created.body
    assert "_h2c-user_pm-agent_" in created.json()["room_name"]
    assert health.status == 200


def test_a_body_in_a_second_write_after_an_h2c_offer_is_read(gateway: Gateway) -> None:
    head, body = offered("/api/voice/session", SESSION_BODY | {"user_id": "split-user"})

    created, health = exchange(gateway.port, head, body, request("GET", "/healthz", headers=CLOSE))

    assert created.status == 201, created.body
    assert "_split-user_pm-agent_" in created.json()["room_name"]
    assert health.status == 200


def test_the_token_endpoint_with_an_h2c_offer_honours_its_body(gateway: Gateway) -> None:
    room_name = f"foundry_{uuid.uuid4()}"
    head, body = offered("/api/voice/token", {"room_name": room_name}, **OFFER_THEN_CLOSE)

    (issued,) = exchange(gateway.port, head, body)

    assert issued.status == 201, issued.body
    assert issued.json()["room_name"] == room_name


def test_a_chunked_body_after_an_h2c_offer_is_read(gateway: Gateway) -> None:
    encoded = json.dumps(SESSION_BODY | {"user_id": "chunked-user"}).encode()
    headers = {**H2C_OFFER, **AUTH, **JSON, **OFFER_THEN_CLOSE, "Transfer-Encoding": "chunked"}
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(encoded), encoded)

    (created,) = exchange(
        gateway.port, request("POST", "/api/voice/session", headers=headers), chunked
    )

    assert created.status == 201, created.body
    assert "_chunked-user_pm-agent_" in created.json()["room_name"]


def test_a_websocket_offer_is_served_as_plain_http(gateway: Gateway) -> None:
    offer = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    pipelined = request("GET", "/healthz", headers=offer) + request(
        "GET", "/healthz", headers=CLOSE
    )

    first, second = exchange(gateway.port, pipelined)

    assert (first.status, second.status) == (200, 200)

"""Bodies over VOICE_GATEWAY_MAX_BODY_BYTES are refused with 413 before they are read whole."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.gateway import SESSION_BODY, make_settings, running_gateway
from tests.support.keys import SERVICE_KEY
from tests.support.live_gateway import live_gateway
from tests.support.problems import assert_problem
from voice_gateway.standin import StandIn


def padded_body(size: int) -> bytes:
    """A valid session request of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(SESSION_BODY).encode()
    return body + b" " * (size - len(body))


async def test_a_body_over_the_default_64_kib_is_a_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", content=padded_body(64 * 1024 + 1))

    assert_problem(response, 413, "payload_too_large")


async def test_a_body_of_exactly_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", content=padded_body(64 * 1024))

    assert response.status_code == 201


async def test_the_limit_comes_from_the_settings(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, max_body_bytes=2048)) as client:
        response = await client.post("/api/voice/session", content=padded_body(2049))

    assert_problem(response, 413, "payload_too_large")


async def test_a_chunked_body_over_the_limit_is_a_413(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1024):  # up to 1 MiB, if nobody stops reading
            sent += 1024
            yield b" " * 1024

    before = standin.requests_count("CreateRoom")
    response = await client.post("/api/voice/session", content=chunks())

    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert standin.requests_count("CreateRoom") == before


async def test_json_nested_beyond_reason_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", content=b"[" * 60_000)

    assert_problem(response, 400, "invalid_request")


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    standin: StandIn,
) -> None:
    settings = make_settings(standin, api_keys=[SERVICE_KEY])
    head = (
        "POST /api/voice/session HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {SERVICE_KEY}\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    with live_gateway(settings) as (host, port), socket.create_connection((host, port), 10) as conn:
        conn.settimeout(10)
        conn.sendall(head.encode() + b"{")  # 1 byte of the 10 MiB it announced
        answer = conn.recv(65536).decode()

    assert answer.startswith("HTTP/1.1 413")
    assert "application/problem+json" in answer


@pytest.mark.parametrize("length", ["99999999999999999999999", "1" * 5000])
def test_an_absurd_declared_length_is_a_4xx_not_a_500(standin: StandIn, length: str) -> None:
    head = f"POST /api/voice/session HTTP/1.1\r\nHost: g\r\nContent-Length: {length}\r\n\r\n"
    with (
        live_gateway(make_settings(standin)) as (host, port),
        socket.create_connection((host, port), 10) as conn,
    ):
        conn.settimeout(10)
        conn.sendall(head.encode())
        answer = conn.recv(65536).decode(errors="replace")

    assert answer.startswith(("HTTP/1.1 413", "HTTP/1.1 400"))

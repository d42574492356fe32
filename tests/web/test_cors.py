"""CORS: the allowlisted origins get preflights answered without credentials; no one else gets
any CORS header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.gateway import SESSION_BODY, make_settings, running_gateway
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from voice_gateway.standin import StandIn

APP = "https://app.example.test"
OTHER = "https://evil.example.test"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture
async def gateway(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(standin, api_keys=[SERVICE_KEY], cors_origins=APP)
    async with running_gateway(settings) as client:
        yield client


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_a_preflight_from_an_allowed_origin_needs_no_credentials(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.options("/api/voice/session", headers=PREFLIGHT | {"Origin": APP})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_an_allowed_origin_can_read_answers_and_errors(gateway: httpx.AsyncClient) -> None:
    created = await gateway.post(
        "/api/voice/session", json=SESSION_BODY, headers=SERVICE_AUTH | {"Origin": APP}
    )
    refused = await gateway.post("/api/voice/session", json=SESSION_BODY, headers={"Origin": APP})

    assert created.headers["access-control-allow-origin"] == APP
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    ("method", "headers", "asked"),
    [
        ("POST", "authorization, x-trace", "header x-trace"),
        ("PUT", "content-type", "method PUT"),
        ("PATCH", "X-One, x-two", "method PATCH and header X-One, x-two"),
    ],
)
async def test_a_preflight_asking_for_what_is_not_allowed_is_a_problem_saying_what(
    gateway: httpx.AsyncClient, method: str, headers: str, asked: str
) -> None:
    preflight = {
        "Origin": APP,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
        "X-Request-ID": "preflight-7",
    }
    response = await gateway.options("/api/voice/session", headers=preflight)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "cors_preflight_refused"
    assert problem["request_id"] == "preflight-7"
    assert problem["detail"] == (
        "This origin may send methods GET, POST, DELETE and headers Authorization, "
        f"Content-Type, X-Request-ID, Idempotency-Key; the preflight asks for {asked}."
    )


async def test_a_preflight_from_another_origin_gets_no_cors_headers(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.options("/api/voice/session", headers=PREFLIGHT | {"Origin": OTHER})

    assert response.status_code == 401
    assert cors_headers(response) == {}


async def test_a_request_from_another_origin_gets_no_cors_headers(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post(
        "/api/voice/session", json=SESSION_BODY, headers=SERVICE_AUTH | {"Origin": OTHER}
    )

    assert response.status_code == 201
    assert cors_headers(response) == {}


async def test_by_default_no_origin_is_allowed(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/api/voice/session", headers=PREFLIGHT | {"Origin": APP})
    request = await client.get("/healthz", headers={"Origin": APP})

    assert cors_headers(preflight) == {}
    assert cors_headers(request) == {}


async def test_origins_are_a_comma_separated_allowlist(standin: StandIn) -> None:
    settings = make_settings(standin, cors_origins=f"{OTHER}, {APP}")
    async with running_gateway(settings) as client:
        response = await client.get("/healthz", headers={"Origin": APP})

    assert response.headers["access-control-allow-origin"] == APP

"""Service keys and the 401 contract: who gets in, with which challenge, and what stays public."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from tests.support.gateway import SESSION_BODY, make_settings, running_gateway
from tests.support.keys import API_KEY, API_SECRET, SERVICE_AUTH, SERVICE_KEY
from tests.support.problems import assert_problem
from voice_gateway.access.service_keys import ServiceKeys
from voice_gateway.standin import StandIn, sign_webhook

OTHER_KEY = "second-service-key-0123456789abcdef"


@pytest.fixture
async def gateway(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(make_settings(standin, api_keys=[SERVICE_KEY])) as client:
        yield client


async def test_no_credentials_is_a_401_with_a_bearer_challenge(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/api/voice/session", json=SESSION_BODY)

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="voice-gateway"'


async def test_a_wrong_key_is_a_401_saying_invalid_token(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/voice/session", json=SESSION_BODY, headers={"Authorization": "Bearer not-our-key"}
    )

    assert_problem(response, 401, "unauthenticated")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "not-our-key" not in response.text + response.headers["www-authenticate"]


async def test_a_service_key_may_create_a_session_for_any_user(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/voice/session", json=SESSION_BODY | {"user_id": "anyone"}, headers=SERVICE_AUTH
    )

    assert response.status_code == 201
    assert response.json()["room_name"].startswith("foundry_anyone_")


async def test_a_service_key_may_read_and_end_any_session(gateway: httpx.AsyncClient) -> None:
    created = await gateway.post("/api/voice/session", json=SESSION_BODY, headers=SERVICE_AUTH)
    path = f"/api/voice/session/{created.json()['room_name']}"

    assert (await gateway.get(path, headers=SERVICE_AUTH)).status_code == 200
    assert (await gateway.delete(path, headers=SERVICE_AUTH)).status_code == 204


async def test_a_service_caller_must_name_the_user(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/voice/session", json={"agent_id": "pm-agent"}, headers=SERVICE_AUTH
    )

    assert_problem(response, 422, "invalid_request")
    assert [error["field"] for error in response.json()["errors"]] == ["user_id"]


async def test_a_hashed_key_entry_accepts_the_plain_key(standin: StandIn) -> None:
    entry = "sha256:" + hashlib.sha256(OTHER_KEY.encode()).hexdigest()
    settings = make_settings(standin, api_keys=[SERVICE_KEY, entry])
    async with running_gateway(settings) as client:
        response = await client.get(
            "/api/voice/session/foundry_nobody", headers={"Authorization": f"Bearer {OTHER_KEY}"}
        )
        hash_itself = await client.get(
            "/api/voice/session/foundry_nobody", headers={"Authorization": f"Bearer {entry}"}
        )

    assert response.status_code == 404  # authenticated: the room just is not there
    assert hash_itself.status_code == 401


def test_keys_come_from_a_comma_separated_variable(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICE_GATEWAY_API_KEYS", f" {SERVICE_KEY} , {OTHER_KEY} ")
    keys = ServiceKeys(make_settings(standin).api_keys)

    assert keys.match(SERVICE_KEY)
    assert keys.match(OTHER_KEY)
    assert keys.match(SERVICE_KEY) != keys.match(OTHER_KEY)


def test_a_key_id_reveals_no_part_of_the_key() -> None:
    key_id = ServiceKeys([SecretStr(SERVICE_KEY)]).match(SERVICE_KEY)

    assert key_id is not None
    assert key_id.removeprefix("key-") not in SERVICE_KEY


async def test_the_bearer_scheme_is_case_insensitive(gateway: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"bearer {SERVICE_KEY}"}
    response = await gateway.get("/api/voice/session/foundry_nobody", headers=headers)

    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        f"Basic {SERVICE_KEY}",
        SERVICE_KEY,
        f"Bearer {SERVICE_KEY} extra",
        f"Bearer {SERVICE_KEY}\x00",
        "Bearer ",
        "Bearer " + "a" * 9000,
    ],
)
async def test_a_malformed_authorization_header_is_a_401(
    gateway: httpx.AsyncClient, authorization: str
) -> None:
    response = await gateway.get(
        "/api/voice/session/foundry_nobody", headers={"Authorization": authorization}
    )

    assert_problem(response, 401, "unauthenticated")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_two_authorization_headers_are_a_401(gateway: httpx.AsyncClient) -> None:
    headers = [("Authorization", f"Bearer {SERVICE_KEY}"), ("Authorization", "Bearer other")]
    response = await gateway.get("/api/voice/session/foundry_nobody", headers=headers)

    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_probes_metrics_and_the_contract_need_no_credentials(
    gateway: httpx.AsyncClient, path: str
) -> None:
    assert (await gateway.get(path)).status_code == 200
    assert (await gateway.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 200


async def test_the_webhook_path_needs_no_gateway_credentials(gateway: httpx.AsyncClient) -> None:
    # LiveKit's signature is its credential: a signed body passes without a service key.
    body = b'{"event":"room_started"}'
    signature = {"Authorization": sign_webhook(body, API_KEY, API_SECRET)}

    response = await gateway.post("/api/voice/webhook", content=body, headers=signature)

    assert response.status_code == 200


async def test_an_unknown_path_needs_credentials_before_it_is_a_404(
    gateway: httpx.AsyncClient,
) -> None:
    assert (await gateway.get("/admin")).status_code == 401
    assert (await gateway.get("/admin", headers=SERVICE_AUTH)).status_code == 404


async def test_without_authentication_configured_callers_are_anonymous_with_full_rights(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/voice/session", json=SESSION_BODY | {"user_id": "anyone"})

    assert response.status_code == 201

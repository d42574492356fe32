"""An end user acts only as its own `sub`: creates, reads and ends only its own sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from livekit import api

from tests.support.gateway import running_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.keys import API_KEY, API_SECRET, SERVICE_AUTH, SERVICE_KEY
from tests.support.problems import assert_problem
from voice_gateway.standin import StandIn

SESSION = "/api/voice/session"
NATE = bearer(hs256_token("nate"))


@pytest.fixture
async def gateway(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(secret_settings(standin, api_keys=[SERVICE_KEY])) as client:
        yield client


async def session_of(gateway: httpx.AsyncClient, user_id: str) -> str:
    body = {"user_id": user_id, "agent_id": "pm-agent"}
    response = await gateway.post(SESSION, json=body, headers=SERVICE_AUTH)
    return str(response.json()["room_name"])


async def test_user_id_defaults_to_the_tokens_subject(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(SESSION, json={"agent_id": "pm-agent"}, headers=NATE)

    assert response.status_code == 201
    assert response.json()["room_name"].startswith("foundry_nate_")


async def test_naming_itself_as_user_id_is_allowed(gateway: httpx.AsyncClient) -> None:
    body = {"user_id": "nate", "agent_id": "pm-agent"}

    assert (await gateway.post(SESSION, json=body, headers=NATE)).status_code == 201


async def test_creating_a_session_for_another_user_is_a_403_that_creates_nothing(
    gateway: httpx.AsyncClient, standin: StandIn
) -> None:
    before = standin.requests_count("CreateRoom")
    body = {"user_id": "zoe", "agent_id": "pm-agent"}
    response = await gateway.post(SESSION, json=body, headers=NATE)

    assert_problem(response, 403, "forbidden")
    assert [error["field"] for error in response.json()["errors"]] == ["user_id"]
    assert standin.requests_count("CreateRoom") == before


async def test_a_malformed_user_id_is_a_422_even_for_an_end_user(
    gateway: httpx.AsyncClient,
) -> None:
    body = {"user_id": "../zoe", "agent_id": "pm-agent"}

    assert_problem(await gateway.post(SESSION, json=body, headers=NATE), 422, "invalid_request")


async def test_a_subject_outside_the_user_id_alphabet_is_a_403_that_says_it_is_the_token(
    standin: StandIn,
) -> None:
    async with running_gateway(secret_settings(standin)) as client:
        token = hs256_token("auth0|12345")
        response = await client.post(SESSION, json={"agent_id": "pm-agent"}, headers=bearer(token))

    problem = assert_problem(response, 403, "forbidden")
    assert "token's subject cannot be used as a LiveKit identity" in problem["detail"]
    assert "A-Z a-z 0-9 _ . @ -" in problem["detail"]


async def test_a_token_subject_outside_the_alphabet_is_a_403_at_the_token_endpoint(
    standin: StandIn,
) -> None:
    async with running_gateway(secret_settings(standin)) as client:
        token = hs256_token("auth0|12345")
        response = await client.post("/api/voice/token", json={}, headers=bearer(token))

    problem = assert_problem(response, 403, "forbidden")
    assert "token's subject cannot be used as a LiveKit identity" in problem["detail"]


async def test_an_end_user_reads_and_ends_its_own_session(gateway: httpx.AsyncClient) -> None:
    path = f"{SESSION}/{await session_of(gateway, 'nate')}"

    assert (await gateway.get(path, headers=NATE)).status_code == 200
    assert (await gateway.delete(path, headers=NATE)).status_code == 204


async def test_reading_another_users_session_is_a_403(gateway: httpx.AsyncClient) -> None:
    path = f"{SESSION}/{await session_of(gateway, 'zoe')}"

    problem = assert_problem(await gateway.get(path, headers=NATE), 403, "forbidden")
    assert problem["detail"] == "This session belongs to another user"
    assert "errors" not in problem  # the request named no field that is to blame


async def test_ending_another_users_session_is_a_403_and_leaves_it(
    gateway: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = await session_of(gateway, "zoe")

    response = await gateway.delete(f"{SESSION}/{room_name}", headers=NATE)

    problem = assert_problem(response, 403, "forbidden")
    assert problem["detail"] == "This session belongs to another user"
    assert standin.has_room(room_name)


async def test_a_room_that_is_no_session_stays_a_404_for_an_end_user(
    gateway: httpx.AsyncClient, standin: StandIn
) -> None:
    livekit = api.LiveKitAPI(standin.url, API_KEY, API_SECRET)
    try:
        await livekit.room.create_room(api.CreateRoomRequest(name="foundry_nate_foreign"))
    finally:
        await livekit.aclose()

    response = await gateway.get(f"{SESSION}/foundry_nate_foreign", headers=NATE)

    assert_problem(response, 404, "session_not_found")


async def test_a_missing_session_is_a_404_not_a_403(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(f"{SESSION}/foundry_zoe_pm-agent_sess_gone", headers=NATE)

    assert_problem(response, 404, "session_not_found")

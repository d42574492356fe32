"""POST /api/voice/session: the response, the room LiveKit holds, and the token."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import anyio
import httpx
import jwt
import pytest

from tests.support.gateway import create_session, make_settings, running_gateway
from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.standin import StandIn


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, API_SECRET, algorithms=["HS256"], issuer=API_KEY)


async def test_created_session_answers_201_with_exactly_the_contract_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await create_session(client)

    assert response.status_code == 201
    assert set(response.json()) == {"session_id", "room_name", "token", "livekit_url", "expires_at"}


async def test_session_id_is_prefixed_and_carries_enough_randomness(
    client: httpx.AsyncClient,
) -> None:
    ids = {(await create_session(client)).json()["session_id"] for _ in range(3)}

    assert len(ids) == 3
    assert all(re.fullmatch(r"sess_[A-Za-z0-9_-]{16,}", session_id) for session_id in ids)


async def test_room_name_joins_prefix_user_agent_and_session(client: httpx.AsyncClient) -> None:
    body = (await create_session(client)).json()

    assert body["room_name"] == f"foundry_nate_pm-agent_{body['session_id']}"


async def test_room_prefix_comes_from_the_settings(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, room_prefix="acme")) as client:
        body = (await create_session(client)).json()

    assert body["room_name"].startswith("acme_nate_pm-agent_sess_")


async def test_token_bearing_response_is_not_cacheable_and_has_a_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await create_session(client)

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/voice/session",
        json={"user_id": "nate", "agent_id": "pm-agent"},
        headers={"X-Request-ID": "trace-123"},
    )

    assert response.headers["x-request-id"] == "trace-123"


async def test_livekit_url_defaults_to_the_api_url_in_websocket_form(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    body = (await create_session(client)).json()

    assert body["livekit_url"] == standin.url.replace("http://", "ws://")


async def test_livekit_url_is_the_public_url_when_one_is_set(standin: StandIn) -> None:
    settings = make_settings(standin, public_livekit_url="wss://voice.example.com")
    async with running_gateway(settings) as client:
        body = (await create_session(client)).json()

    assert body["livekit_url"] == "wss://voice.example.com"


async def test_expires_at_is_utc_iso8601_and_the_duration_away(client: httpx.AsyncClient) -> None:
    body = (await create_session(client, session_duration_hours=2)).json()
    expires_at = datetime.fromisoformat(body["expires_at"])
    created_at = datetime.fromtimestamp(claims_of(body["token"])["nbf"], expires_at.tzinfo)

    assert body["expires_at"].endswith("Z")
    assert (expires_at - created_at).total_seconds() == 2 * 3600


async def test_duration_defaults_to_one_hour(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", json={"user_id": "u", "agent_id": "a"})
    claims = claims_of(response.json()["token"])

    assert claims["exp"] - claims["nbf"] == 3600


async def test_token_exp_equals_expires_at(client: httpx.AsyncClient) -> None:
    body = (await create_session(client, session_duration_hours=0.75)).json()

    expires_at = datetime.fromisoformat(body["expires_at"])
    assert claims_of(body["token"])["exp"] == int(expires_at.timestamp())


async def test_token_identity_is_the_user(client: httpx.AsyncClient) -> None:
    body = (await create_session(client, user_id="ada@example.com")).json()

    assert claims_of(body["token"])["sub"] == "ada@example.com"


async def test_token_grants_joining_that_room_only(client: httpx.AsyncClient) -> None:
    body = (await create_session(client)).json()
    video = claims_of(body["token"])["video"]

    assert video["roomJoin"] is True
    assert video["room"] == body["room_name"]
    for power in ("roomAdmin", "roomCreate", "roomList", "roomRecord"):
        assert not video.get(power), power


async def test_token_dispatches_the_agent_in_its_room_configuration(
    client: httpx.AsyncClient,
) -> None:
    body = (await create_session(client)).json()
    agents = claims_of(body["token"])["roomConfig"]["agents"]

    assert [agent["agentName"] for agent in agents] == ["pm-agent"]


async def test_room_is_created_with_session_metadata(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    body = (await create_session(client)).json()
    metadata = json.loads(standin.get_room(body["room_name"]).metadata)

    assert metadata["session_id"] == body["session_id"]
    assert (metadata["user_id"], metadata["agent_id"]) == ("nate", "pm-agent")
    assert datetime.fromisoformat(metadata["expires_at"]) == datetime.fromisoformat(
        body["expires_at"]
    )
    assert "created_at" in metadata


async def test_room_is_created_with_the_agent_dispatched(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    body = (await create_session(client)).json()
    agents = standin.get_room_agents(body["room_name"])

    assert [agent.agent_name for agent in agents] == ["pm-agent"]


async def test_the_rooms_timeouts_are_the_user_join_and_solo_limits(standin: StandIn) -> None:
    settings = make_settings(standin, user_join_timeout_s=42, solo_timeout_s=7)
    async with running_gateway(settings) as client:
        body = (await create_session(client)).json()
    room = standin.get_room(body["room_name"])

    assert (room.empty_timeout, room.departure_timeout) == (42, 7)


async def test_a_limit_turned_off_closes_the_room_only_after_expiry(standin: StandIn) -> None:
    settings = make_settings(standin, user_join_timeout_s=0, solo_timeout_s=0)
    async with running_gateway(settings) as client:
        body = (await create_session(client, session_duration_hours=0.5)).json()
    room = standin.get_room(body["room_name"])

    # LiveKit reads 0 as its own default: a limit that is off is one past the session's end.
    assert (room.empty_timeout, room.departure_timeout) == (1800 + 60, 1800 + 60)


@pytest.mark.parametrize("agent_id", ["pm-agent", "support"])
async def test_allowed_agents_are_dispatched(standin: StandIn, agent_id: str) -> None:
    settings = make_settings(standin, allowed_agents=["pm-agent", "support"])
    async with running_gateway(settings) as client:
        response = await create_session(client, agent_id=agent_id)

    assert response.status_code == 201


async def test_an_agent_outside_the_allowlist_is_refused_naming_the_field(
    standin: StandIn,
) -> None:
    async with running_gateway(make_settings(standin, allowed_agents=["support"])) as client:
        response = await create_session(client, agent_id="pm-agent")

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert [e["field"] for e in response.json()["errors"]] == ["agent_id"]


async def test_sessions_created_at_once_each_get_a_token_for_their_own_room(
    client: httpx.AsyncClient,
) -> None:
    # Join tokens asked for in one pass of the loop are signed in one batch (join_tokens.py).
    async with anyio.create_task_group() as creates:
        answers: list[httpx.Response] = []

        async def create(user_id: str) -> None:
            answers.append(await create_session(client, user_id=user_id))

        for number in range(12):
            creates.start_soon(create, f"user-{number}")

    tokens = [(a.json()["room_name"], claims_of(a.json()["token"])) for a in answers]
    assert len({room for room, _ in tokens}) == 12
    assert all(claims["video"]["room"] == room for room, claims in tokens)
    assert all(claims["sub"] in room for room, claims in tokens)

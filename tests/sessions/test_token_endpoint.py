"""POST /api/voice/token: LiveKit's TokenSource endpoint format, identities, rooms and TTL."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import make_settings, running_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.join_tokens import TOKEN, claims_of, record_in
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from voice_gateway.standin import StandIn

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ADA = bearer(hs256_token("ada"))  # an end user's own JWT, as the app issues it


@pytest.fixture
async def authenticated(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway that knows a service key and verifies end users' JWTs."""
    async with running_gateway(secret_settings(standin, api_keys=[SERVICE_KEY])) as client:
        yield client


async def test_answers_201_with_the_token_source_response_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TOKEN, json={})

    assert response.status_code == 201
    assert set(response.json()) == {
        "server_url",
        "participant_token",
        "room_name",
        "participant_name",
    }


async def test_the_response_is_not_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json={})

    assert response.headers["cache-control"] == "no-store"


async def test_server_url_is_the_url_clients_dial(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    response = await client.post(TOKEN, json={})

    assert response.json()["server_url"] == standin.url.replace("http://", "ws://")


async def test_an_empty_body_is_a_request_with_every_field_absent(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TOKEN, content=b"", headers={"Content-Type": "application/json"})

    assert response.status_code == 201


@pytest.mark.parametrize("room_config", [None, {}, {"future_field": {"x": 1}}])
async def test_room_config_absent_empty_or_with_unknown_fields_is_accepted(
    client: httpx.AsyncClient, room_config: Any
) -> None:
    body = {} if room_config is None else {"room_config": room_config}

    assert (await client.post(TOKEN, json=body)).status_code == 201


async def test_unknown_request_fields_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json={"a_field_from_a_newer_client": [1, 2]})

    assert response.status_code == 201


async def test_each_call_without_a_room_name_gets_a_fresh_room(
    client: httpx.AsyncClient,
) -> None:
    rooms = {(await client.post(TOKEN, json={})).json()["room_name"] for _ in range(3)}

    assert len(rooms) == 3
    assert all(re.fullmatch(f"foundry_{UUID}", room) for room in rooms)


async def test_the_token_joins_exactly_its_room(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json={})
    video = claims_of(response)["video"]

    assert video["roomJoin"] is True
    assert video["room"] == response.json()["room_name"]
    for power in ("roomAdmin", "roomCreate", "roomList", "roomRecord"):
        assert not video.get(power), power


async def test_no_call_is_made_to_livekit(client: httpx.AsyncClient, standin: StandIn) -> None:
    before = len(standin.requests())

    await client.post(TOKEN, json={"room_config": {"agents": [{"agent_name": "pm-agent"}]}})

    assert len(standin.requests()) == before


async def test_the_token_lives_fifteen_minutes_by_default(client: httpx.AsyncClient) -> None:
    claims = claims_of(await client.post(TOKEN, json={}))

    assert claims["exp"] - claims["nbf"] == 15 * 60


async def test_the_token_ttl_is_a_setting(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, token_ttl_s=300)) as client:
        claims = claims_of(await client.post(TOKEN, json={}))

    assert claims["exp"] - claims["nbf"] == 300


async def test_the_participant_fields_reach_the_token(client: httpx.AsyncClient) -> None:
    body = {
        "participant_name": "Ada",
        "participant_metadata": '{"plan": "pro"}',
        "participant_attributes": {"lang": "en"},
    }
    response = await client.post(TOKEN, json=body)
    claims = claims_of(response)

    assert (claims["name"], claims["metadata"]) == ("Ada", '{"plan": "pro"}')
    assert claims["attributes"] == {"lang": "en"}
    assert response.json()["participant_name"] == "Ada"


async def test_the_room_configuration_records_a_token_session(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TOKEN, json={"participant_identity": "nate"})
    claims = claims_of(response)
    record = record_in(claims)

    assert claims["roomConfig"]["name"] == response.json()["room_name"]
    assert response.json()["room_name"] == f"foundry_{record['session_id']}"
    assert (record["user_id"], record["source"]) == ("nate", "token")
    assert record["expires_at"] > record["created_at"]


# -- identity ----------------------------------------------------------------------------------


async def test_identity_is_the_participant_identity_asked_for(client: httpx.AsyncClient) -> None:
    claims = claims_of(await client.post(TOKEN, json={"participant_identity": "nate"}))

    assert claims["sub"] == "nate"


async def test_identity_is_a_fresh_uuid_when_none_is_asked_for(
    client: httpx.AsyncClient,
) -> None:
    first = claims_of(await client.post(TOKEN, json={}))["sub"]
    second = claims_of(await client.post(TOKEN, json={}))["sub"]

    assert first != second
    assert str(uuid.UUID(first)) == first


async def test_a_caller_without_credentials_gets_a_401(authenticated: httpx.AsyncClient) -> None:
    response = await authenticated.post(TOKEN, json={})

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_an_end_user_joins_as_itself(authenticated: httpx.AsyncClient) -> None:
    claims = claims_of(await authenticated.post(TOKEN, json={}, headers=ADA))

    assert claims["sub"] == "ada"


async def test_an_end_user_may_name_its_own_identity(authenticated: httpx.AsyncClient) -> None:
    response = await authenticated.post(TOKEN, json={"participant_identity": "ada"}, headers=ADA)

    assert claims_of(response)["sub"] == "ada"


async def test_an_end_user_asking_for_another_identity_is_forbidden(
    authenticated: httpx.AsyncClient,
) -> None:
    response = await authenticated.post(TOKEN, json={"participant_identity": "nate"}, headers=ADA)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert response.json()["errors"][0]["field"] == "participant_identity"


@pytest.mark.parametrize("identity", ["", "a b", "x" * 129, "naïve", "a\nb", 7])
async def test_an_identity_outside_the_user_id_alphabet_is_refused(
    client: httpx.AsyncClient, identity: object
) -> None:
    response = await client.post(TOKEN, json={"participant_identity": identity})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "participant_identity"


# -- room names --------------------------------------------------------------------------------


async def test_a_service_caller_may_name_a_room_of_the_gateways_shape(
    authenticated: httpx.AsyncClient,
) -> None:
    room_name = f"foundry_{uuid.uuid4()}"

    response = await authenticated.post(TOKEN, json={"room_name": room_name}, headers=SERVICE_AUTH)

    assert response.json()["room_name"] == room_name
    assert claims_of(response)["video"]["room"] == room_name


@pytest.mark.parametrize(
    "room_name",
    ["other-room", "foundry_nate_pm-agent_sess_x", f"acme_{uuid.uuid4()}", "foundry_not-a-uuid"],
)
async def test_a_room_name_of_another_shape_is_refused(
    client: httpx.AsyncClient, room_name: str
) -> None:
    response = await client.post(TOKEN, json={"room_name": room_name})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "room_name"


async def test_an_end_user_may_not_choose_the_room(authenticated: httpx.AsyncClient) -> None:
    body = {"room_name": f"foundry_{uuid.uuid4()}"}

    response = await authenticated.post(TOKEN, json=body, headers=ADA)

    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "room_name"


# -- sizes and types ---------------------------------------------------------------------------


async def test_participant_metadata_beyond_the_bound_is_refused(standin: StandIn) -> None:
    settings = make_settings(standin, max_client_metadata_bytes=16)
    async with running_gateway(settings) as client:
        fits = await client.post(TOKEN, json={"participant_metadata": "x" * 16})
        too_big = await client.post(TOKEN, json={"participant_metadata": "é" * 9})

    assert fits.status_code == 201
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "participant_metadata"


async def test_participant_attributes_beyond_the_bound_are_refused(standin: StandIn) -> None:
    settings = make_settings(standin, max_client_metadata_bytes=16)
    async with running_gateway(settings) as client:
        response = await client.post(TOKEN, json={"participant_attributes": {"k" * 8: "v" * 9}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "participant_attributes"


async def test_a_participant_name_over_256_bytes_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json={"participant_name": "é" * 129})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "participant_name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room_config": "agents"}, "room_config"),
        ({"participant_attributes": {"k": 1}}, "participant_attributes.k"),
        ({"participant_metadata": 5}, "participant_metadata"),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(TOKEN, json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_a_body_that_is_not_a_json_object_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, content=b"[]", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_json_nested_too_deeply_for_the_parser_is_a_400(client: httpx.AsyncClient) -> None:
    nested = b'{"room_config": ' + b"[" * 60_000  # deep, yet under the body limit

    response = await client.post(
        TOKEN, content=nested, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


async def test_tokens_issued_are_counted(client: httpx.AsyncClient) -> None:
    await client.post(TOKEN, json={})

    assert "voice_gateway_tokens_issued_total 1.0" in (await client.get("/metrics")).text

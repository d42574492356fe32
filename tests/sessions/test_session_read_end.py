"""GET and DELETE /api/voice/session/{room_name}: only ever the gateway's own session rooms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from livekit import api

from tests.support.gateway import create_session
from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.standin import StandIn


@pytest.fixture
async def livekit(standin: StandIn) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(standin.url, API_KEY, API_SECRET)
    yield client
    await client.aclose()


async def test_session_reports_its_metadata_and_times(client: httpx.AsyncClient) -> None:
    created = (await create_session(client)).json()
    response = await client.get(f"/api/voice/session/{created['room_name']}")

    body = response.json()
    assert response.status_code == 200
    assert body["session_id"] == created["session_id"]
    assert (body["user_id"], body["agent_id"]) == ("nate", "pm-agent")
    assert body["expires_at"] == created["expires_at"]
    assert datetime.fromisoformat(body["created_at"]) < datetime.fromisoformat(body["expires_at"])


async def test_session_lists_the_rooms_participants(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]
    standin.add_participant(room_name, "nate", name="Nate")
    standin.add_participant(room_name, "agent-1", kind=api.ParticipantInfo.Kind.AGENT)

    body = (await client.get(f"/api/voice/session/{room_name}")).json()

    by_identity = {p["identity"]: p for p in body["participants"]}
    assert body["num_participants"] == 2
    assert by_identity["nate"]["name"] == "Nate"
    assert by_identity["nate"]["state"] == "ACTIVE"
    assert by_identity["agent-1"]["kind"] == "AGENT"
    assert by_identity["nate"]["joined_at"].endswith("Z")


async def test_a_room_that_does_not_exist_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/voice/session/foundry_nate_pm-agent_sess_missing")

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


async def test_a_room_with_another_prefix_is_a_404_without_asking_livekit(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    before = standin.requests_count("ListRooms")
    response = await client.get("/api/voice/session/other_nate_pm-agent_sess_x")

    assert response.status_code == 404
    assert standin.requests_count("ListRooms") == before


async def test_a_room_without_gateway_metadata_is_a_404(
    client: httpx.AsyncClient, livekit: api.LiveKitAPI
) -> None:
    await livekit.room.create_room(api.CreateRoomRequest(name="foundry_someone_else"))

    response = await client.get("/api/voice/session/foundry_someone_else")

    assert response.status_code == 404


async def test_a_room_whose_metadata_names_another_room_is_a_404(
    client: httpx.AsyncClient, livekit: api.LiveKitAPI, standin: StandIn
) -> None:
    genuine = (await create_session(client)).json()["room_name"]
    copied = standin.get_room(genuine).metadata
    await livekit.room.create_room(api.CreateRoomRequest(name="foundry_copy", metadata=copied))

    assert (await client.get("/api/voice/session/foundry_copy")).status_code == 404
    assert (await client.delete("/api/voice/session/foundry_copy")).status_code == 404


async def test_ending_a_session_deletes_its_room(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]

    response = await client.delete(f"/api/voice/session/{room_name}")

    assert response.status_code == 204
    assert response.content == b""
    assert not standin.has_room(room_name)


async def test_an_ended_session_is_gone(client: httpx.AsyncClient) -> None:
    room_name = (await create_session(client)).json()["room_name"]
    await client.delete(f"/api/voice/session/{room_name}")

    assert (await client.get(f"/api/voice/session/{room_name}")).status_code == 404
    assert (await client.delete(f"/api/voice/session/{room_name}")).status_code == 404


async def test_ending_a_foreign_room_is_a_404_and_leaves_it_alone(
    client: httpx.AsyncClient, livekit: api.LiveKitAPI, standin: StandIn
) -> None:
    await livekit.room.create_room(api.CreateRoomRequest(name="foundry_not_ours", metadata="{}"))

    response = await client.delete("/api/voice/session/foundry_not_ours")

    assert response.status_code == 404
    assert standin.has_room("foundry_not_ours")


@pytest.mark.parametrize("path", ["foundry_..", "..%2F..%2Fetc", "foundry_x%2F.."])
async def test_path_tricks_never_reach_a_room(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"/api/voice/session/{path}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "room_name",
    [
        "foundry_" + "x" * 300,
        "foundry_nate%00",
        "foundry_nate%0A",
        "foundry_n%C3%A4te",
        "foundry%20x",
    ],
)
async def test_room_names_outside_the_alphabet_or_length_are_422_naming_the_field(
    client: httpx.AsyncClient, standin: StandIn, room_name: str
) -> None:
    before = standin.requests_count("ListRooms")
    response = await client.get(f"/api/voice/session/{room_name}")

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["room_name"]
    assert standin.requests_count("ListRooms") == before

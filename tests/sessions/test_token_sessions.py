"""Rooms made from the token endpoint's tokens are gateway sessions like any other."""

from __future__ import annotations

import httpx

from tests.support.join_tokens import TOKEN, claims_of, record_in
from voice_gateway.standin import StandIn

DISPATCH = {"participant_identity": "nate", "room_config": {"agents": [{"agent_name": "pm-agent"}]}}


async def joined(client: httpx.AsyncClient, standin: StandIn) -> httpx.Response:
    """A token from the endpoint, used to join, as a client's connect would."""
    response = await client.post(TOKEN, json=DISPATCH)
    standin.join(response.json()["participant_token"])
    return response


async def test_the_first_join_creates_the_room_with_the_agent_dispatched(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await joined(client, standin)).json()["room_name"]

    assert [agent.agent_name for agent in standin.get_room_agents(room_name)] == ["pm-agent"]


async def test_a_joined_token_room_reads_as_a_session(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    response = await joined(client, standin)
    record = record_in(claims_of(response))

    body = (await client.get(f"/api/voice/session/{response.json()['room_name']}")).json()

    assert body["session_id"] == record["session_id"]
    assert (body["user_id"], body["agent_id"]) == ("nate", "pm-agent")
    assert [p["identity"] for p in body["participants"]] == ["nate"]


async def test_a_joined_token_room_can_be_ended(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await joined(client, standin)).json()["room_name"]

    response = await client.delete(f"/api/voice/session/{room_name}")

    assert response.status_code == 204
    assert not standin.has_room(room_name)


async def test_a_refetch_after_a_disconnect_gets_a_new_room_and_a_new_dispatch(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    first = (await joined(client, standin)).json()["room_name"]
    standin.remove_participant(first, "nate")

    second = (await joined(client, standin)).json()["room_name"]

    assert second != first
    assert [agent.agent_name for agent in standin.get_room_agents(second)] == ["pm-agent"]


async def test_a_token_room_nobody_joined_yet_is_not_found(client: httpx.AsyncClient) -> None:
    room_name = (await client.post(TOKEN, json={})).json()["room_name"]

    response = await client.get(f"/api/voice/session/{room_name}")

    assert response.status_code == 404

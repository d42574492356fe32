"""`GET /api/voice/sessions`: live sessions, newest first, filtered and paged, from one ListRooms
per page; an end user sees only their own, nobody sees a room that is not the gateway's."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from livekit.protocol.models import ParticipantInfo

from tests.support.gateway import create_session, make_settings, running_gateway, serving_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from voice_gateway.standin import StandIn

LIST = "/api/voice/sessions"


async def listed(client: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    response = await client.get(LIST, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def every_page(client: httpx.AsyncClient, **query: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        body = await listed(client, **query, **({"cursor": cursor} if cursor else {}))
        pages.append([session["session_id"] for session in body["sessions"]])
        if (cursor := body["next_cursor"]) is None:
            return pages


async def test_pages_hold_every_session_once_newest_first(client: httpx.AsyncClient) -> None:
    made = [(await create_session(client)).json() for _ in range(5)]
    first = await listed(client)

    pages = await every_page(client, limit=2)

    ids = [session_id for page in pages for session_id in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(ids) == sorted(session["session_id"] for session in made)
    order = [(s["created_at"], s["session_id"]) for s in first["sessions"]]
    assert order == sorted(order, reverse=True)
    assert ids == [session_id for _, session_id in order]


async def test_a_listed_session_says_where_it_stands(client: httpx.AsyncClient) -> None:
    made = (await create_session(client)).json()

    [session] = (await listed(client))["sessions"]

    assert session["room_name"] == made["room_name"]
    assert session["status"] == "waiting_for_agent"
    assert session["agent"]["state"] == "dispatched"
    assert session["user"] == {"identity": "nate", "joined": False, "joined_at": None}
    assert "token" not in session


async def test_filters_by_user_agent_and_status(standin: StandIn) -> None:
    settings = make_settings(standin, allowed_agents=["pm-agent", "support"])
    async with serving_gateway(settings) as url, httpx.AsyncClient(base_url=url) as client:
        standin.set_webhook_urls([f"{url}/api/voice/webhook"])
        with_agent = (await create_session(client)).json()
        await create_session(client, agent_id="support")
        await create_session(client, user_id="sam")
        standin.add_participant(with_agent["room_name"], "agent-AJ_1", kind=ParticipantInfo.AGENT)
        await anyio.sleep(0.3)  # the join's webhook observed
        standin.set_webhook_urls([])
        by_user = await listed(client, user_id="sam")
        by_agent = await listed(client, agent_id="support")
        by_status = await listed(client, status="waiting_for_user")

    assert [s["user_id"] for s in by_user["sessions"]] == ["sam"]
    assert [s["agent_id"] for s in by_agent["sessions"]] == ["support"]
    assert [s["session_id"] for s in by_status["sessions"]] == [with_agent["session_id"]]


async def test_an_end_user_sees_only_their_own_whatever_they_ask(standin: StandIn) -> None:
    settings = secret_settings(standin, api_keys=[SERVICE_KEY])
    async with running_gateway(settings) as client:
        for user in ("nate", "sam"):
            await client.post(
                "/api/voice/session",
                json={"user_id": user, "agent_id": "pm-agent"},
                headers=SERVICE_AUTH,
            )
        nate = bearer(hs256_token("nate"))
        own = (await client.get(LIST, headers=nate)).json()
        asked_for_sam = (await client.get(LIST, params={"user_id": "sam"}, headers=nate)).json()
        everyone = (await client.get(LIST, headers=SERVICE_AUTH)).json()

    assert [s["user_id"] for s in own["sessions"]] == ["nate"]
    assert asked_for_sam["sessions"] == []
    assert sorted(s["user_id"] for s in everyone["sessions"]) == ["nate", "sam"]


async def test_rooms_that_are_not_the_gateways_never_appear(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.create_room("someone-elses-room", metadata='{"user_id": "nate"}')
    standin.create_room("foundry_nate_pm-agent_sess_" + "F" * 22, metadata="{}")
    made = (await create_session(client)).json()
    await client.delete(f"/api/voice/session/{made['room_name']}")  # leaves its end mark

    assert (await listed(client))["sessions"] == []


async def test_a_page_costs_one_list_rooms_and_nothing_per_session(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    for _ in range(3):
        await create_session(client)
    before = [standin.requests_count(m) for m in ("ListRooms", "ListParticipants", "ListDispatch")]

    await listed(client)

    after = [standin.requests_count(m) for m in ("ListRooms", "ListParticipants", "ListDispatch")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 0]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"status": "sleeping"}, "status"),
        ({"user_id": "not a user"}, "user_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"sort": "oldest"}, "sort"),
    ],
)
async def test_a_bad_query_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, standin: StandIn, query: dict[str, str], field: str
) -> None:
    before = standin.requests_count("ListRooms")
    refused = await client.get(LIST, params=query)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in refused.json()["errors"]] == [field]
    assert standin.requests_count("ListRooms") == before  # refused before asking LiveKit


async def test_a_parameter_given_twice_is_a_422_naming_it(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    # The last one counted: ?user_id=alice&user_id=bob listed bob's sessions only.
    before = standin.requests_count("ListRooms")
    refused = await client.get(LIST, params=[("user_id", "alice"), ("user_id", "bob")])

    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "user_id", "message": "must be given once"}]
    assert standin.requests_count("ListRooms") == before


async def test_a_dead_livekit_is_a_503(client: httpx.AsyncClient, standin: StandIn) -> None:
    standin.refuse_connections()

    refused = await client.get(LIST)

    assert refused.status_code == 503
    assert refused.json()["code"] == "livekit_unavailable"


async def test_a_listed_user_who_left_is_not_in_the_room(standin: StandIn) -> None:
    async with (
        serving_gateway(make_settings(standin)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        standin.set_webhook_urls([f"{url}/api/voice/webhook"])
        made = (await create_session(client)).json()
        standin.add_participant(made["room_name"], "agent-AJ_1", kind=ParticipantInfo.AGENT)
        standin.join(made["token"])
        await anyio.sleep(0.3)  # the joins' webhooks observed
        while_there = (await listed(client))["sessions"][0]
        standin.remove_participant(made["room_name"], "nate")
        await anyio.sleep(0.3)
        standin.set_webhook_urls([])
        after = (await listed(client))["sessions"][0]

    assert (while_there["status"], while_there["user"]["joined"]) == ("active", True)
    assert (after["status"], after["user"]["joined"]) == ("waiting_for_user", False)
    assert after["user"]["joined_at"] == while_there["user"]["joined_at"]

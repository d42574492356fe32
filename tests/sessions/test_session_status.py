"""What a session is at any moment (GET): its status, its agent and its user, read from LiveKit's
participants and the agent's dispatch. The real server's side: tests/e2e/test_real_session.py."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest

from tests.support.gateway import create_session, gateway_over_http
from tests.support.polling import poll_until
from voice_gateway.standin import StandIn

WEBHOOK = "/api/voice/webhook"


def gateway(
    standin: StandIn, *, webhooks: bool = True, **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return gateway_over_http(standin, webhooks=webhooks, **overrides)


async def read(client: httpx.AsyncClient, room: str) -> dict[str, Any]:
    response = await client.get(f"/api/voice/session/{room}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def read_until(client: httpx.AsyncClient, room: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any]:
        body = await read(client, room)
        return body if body["status"] == status else {}

    return await poll_until(reached, timeout_s=3)


pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")


async def test_a_new_session_waits_for_its_agent_dispatched(standin: StandIn) -> None:
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        body = await read(client, session["room_name"])

    assert body["status"] == "waiting_for_agent"
    assert body["agent"] == {
        "name": "pm-agent",
        "state": "dispatched",
        "identity": None,
        "joined_at": None,
    }
    assert body["user"] == {"identity": "nate", "joined": False, "joined_at": None}


async def test_once_its_agent_joined_the_session_waits_for_its_user(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        body = await read_until(client, session["room_name"], "waiting_for_user")

    assert body["agent"]["state"] == "joined"
    assert body["agent"]["identity"].startswith("agent-AJ_")
    assert body["agent"]["joined_at"] is not None


async def test_with_agent_and_user_in_the_room_the_session_is_active(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        await read_until(client, session["room_name"], "waiting_for_user")
        standin.join(session["token"])
        body = await read(client, session["room_name"])

    assert body["status"] == "active"
    assert body["user"]["joined"] is True
    assert body["user"]["joined_at"] is not None


async def test_an_agent_that_left_waits_for_its_return(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        room = session["room_name"]
        await read_until(client, room, "waiting_for_user")
        await anyio.sleep(0.2)  # the join's webhook observed
        [identity] = standin.agents.leave(room)
        body = await read(client, room)

    assert body["status"] == "waiting_for_agent"
    assert body["agent"]["state"] == "left"
    assert body["agent"]["identity"] == identity


async def test_an_agent_whose_job_failed_is_failed(standin: StandIn) -> None:
    standin.agents.fail("pm-agent")
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        body = await read(client, session["room_name"])

    assert (body["status"], body["agent"]["state"]) == ("waiting_for_agent", "failed")


async def test_a_user_who_left_is_waited_for_with_the_time_they_joined(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    async with gateway(standin) as client:
        session = (await create_session(client)).json()
        room = session["room_name"]
        standin.join(session["token"])
        await read_until(client, room, "active")
        await anyio.sleep(0.2)  # the join's webhook observed
        standin.remove_participant(room, "nate")
        body = await read(client, room)

    assert body["status"] == "waiting_for_user"
    assert body["user"]["joined"] is False
    assert body["user"]["joined_at"] is not None


async def test_an_expired_session_whose_room_is_still_there_is_ending(standin: StandIn) -> None:
    async with gateway(standin) as client:
        session = (await create_session(client, session_duration_hours=1 / 3600)).json()
        await anyio.sleep(1.1)
        body = await read(client, session["room_name"])

    assert body["status"] == "ending"


async def test_a_token_session_without_an_agent_has_none(standin: StandIn) -> None:
    async with gateway(standin) as client:
        issued = (await client.post("/api/voice/token", json={})).json()
        standin.join(issued["participant_token"])
        body = await read(client, issued["room_name"])

    assert body["agent"] is None
    assert body["status"] == "active"

"""The session lifecycle on the real server with the example agent and a WebRTC user: what a
session is at each moment (GET), and how each limit ends it, with its one reason.

What LiveKit enforces itself is measured here, not assumed: an agent does not keep a room open,
so a room no user joined closes at its empty timeout (the user-join limit) and one its user left
at its departure timeout (the solo limit), the agent still in it either time. The agent's own
limit is the gateway's (agent_watch.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from livekit import api, rtc

from tests.support.gateway import create_session
from tests.support.keys import API_KEY, API_SECRET
from tests.support.polling import poll_until
from tests.support.real_stack import AGENT_NAME, RealStack
from tests.support.rtc_user import joined_user
from voice_gateway.sessions.endings import EndMark
from voice_gateway.vocabulary import end_mark_room_name

pytestmark = pytest.mark.slow
NO_WORKER = "absent-agent"  # a name no worker serves: its dispatch never gets a job


async def status_of(gateway: httpx.AsyncClient, room: str) -> dict[str, Any]:
    body: dict[str, Any] = (await gateway.get(f"/api/voice/session/{room}")).json()
    return body


async def end_reason(stack: RealStack, session: dict[str, str], timeout_s: float) -> str | None:
    """The reason the end mark of the session gives, once there is one."""
    mark_name = end_mark_room_name("foundry", session["session_id"])

    async def mark() -> str:
        found = (await stack.livekit.rooms()).get(mark_name)
        return found.metadata if found else ""

    return EndMark.model_validate_json(await poll_until(mark, timeout_s, interval_s=0.2)).reason


async def seconds_until_gone(stack: RealStack, room: str, timeout_s: float) -> float:
    started = time.monotonic()
    await stack.livekit.wait_until_gone(room, timeout_s)
    return time.monotonic() - started


async def test_the_status_follows_the_agent_and_the_user(real_stack: RealStack) -> None:
    async with real_stack.gateway() as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        room = session["room_name"]
        first = await status_of(gateway, room)
        await real_stack.wait_for_agent_in(room, timeout_s=10)
        agent_there = await status_of(gateway, room)
        async with joined_user(session["livekit_url"], session["token"]):
            both_there = await status_of(gateway, room)
            listed = await poll_until(lambda: _listed_as(gateway, room, "active"), timeout_s=5)
        await poll_until(lambda: _user_gone(gateway, room), timeout_s=5)
        user_left = await status_of(gateway, room)
        listed_after = await poll_until(
            lambda: _listed_as(gateway, room, "waiting_for_user"), timeout_s=5
        )

    assert first["status"] in ("waiting_for_agent", "waiting_for_user")  # the agent is quick
    assert agent_there["status"] == "waiting_for_user"
    assert agent_there["agent"]["state"] == "joined"
    assert agent_there["agent"]["identity"].startswith("agent-AJ_")
    assert both_there["status"] == "active"
    assert both_there["user"]["joined"] is True
    assert (user_left["status"], user_left["user"]["joined"]) == ("waiting_for_user", False)
    assert user_left["user"]["joined_at"] is not None
    # The list, from one ListRooms and what the real server's webhooks told the gateway.
    assert listed["agent"]["identity"] == agent_there["agent"]["identity"]
    assert listed_after["user"]["joined"] is False


async def _listed_as(gateway: httpx.AsyncClient, room: str, status: str) -> dict[str, Any]:
    sessions = (await gateway.get("/api/voice/sessions", params={"limit": 100})).json()["sessions"]
    return next((s for s in sessions if s["room_name"] == room and s["status"] == status), {})


async def _user_gone(gateway: httpx.AsyncClient, room: str) -> bool:
    return (await status_of(gateway, room))["user"]["joined"] is False


async def test_a_user_who_never_joins_ends_the_session_at_the_user_join_limit(
    real_stack: RealStack,
) -> None:
    async with real_stack.gateway(user_join_timeout_s=4) as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        await real_stack.wait_for_agent_in(session["room_name"], timeout_s=10)
        gone_s = await seconds_until_gone(real_stack, session["room_name"], timeout_s=10)
        reason = await end_reason(real_stack, session, timeout_s=5)

    assert reason == "user_never_joined"
    assert gone_s < 6  # LiveKit's own empty timeout, with the agent in the room


async def test_a_user_who_leaves_ends_the_session_at_the_solo_limit(real_stack: RealStack) -> None:
    async with real_stack.gateway(solo_timeout_s=3) as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        room = session["room_name"]
        async with joined_user(session["livekit_url"], session["token"]) as user:
            await user.hear_agent(timeout_s=10)
        left = time.monotonic()
        await real_stack.livekit.wait_until_gone(room, timeout_s=10)
        gone_s = time.monotonic() - left
        reason = await end_reason(real_stack, session, timeout_s=5)

    assert reason == "user_left"
    assert 2 < gone_s < 6  # LiveKit's departure timeout, the agent still in the room


async def test_an_agent_that_leaves_and_does_not_return_ends_the_session(
    real_stack: RealStack,
) -> None:
    async with real_stack.gateway(agent_join_timeout_s=3) as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        room = session["room_name"]
        async with joined_user(session["livekit_url"], session["token"]) as user:
            agent = await user.wait_for_agent(timeout_s=10)
            await user.hear_agent(timeout_s=10)
            await _remove(real_stack, room, agent.identity)
            alone_s = await user.wait_until_disconnected(timeout_s=10)
        reason = await end_reason(real_stack, session, timeout_s=5)

    assert reason == "agent_failed"
    assert user.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED
    assert 2.5 < alone_s < 6  # the user was not left in a silent room past the limit


async def test_an_agent_that_never_comes_ends_the_session(real_stack: RealStack) -> None:
    async with real_stack.gateway(
        agent_join_timeout_s=2, allowed_agents=[AGENT_NAME, NO_WORKER]
    ) as gateway:
        session = (await create_session(gateway, agent_id=NO_WORKER)).json()
        waiting = await status_of(gateway, session["room_name"])
        gone_s = await seconds_until_gone(real_stack, session["room_name"], timeout_s=8)
        reason = await end_reason(real_stack, session, timeout_s=5)

    assert (waiting["status"], waiting["agent"]["state"]) == ("waiting_for_agent", "dispatched")
    assert reason == "agent_failed"
    assert gone_s < 5


async def _remove(stack: RealStack, room: str, identity: str) -> None:
    async with api.LiveKitAPI(stack.server.url, API_KEY, API_SECRET) as livekit:
        await livekit.room.remove_participant(
            api.RoomParticipantIdentity(room=room, identity=identity)
        )

"""A user talking to an agent through the gateway, for real: the real `livekit-server`, the example
agent dispatched by the gateway, and a WebRTC user (the rtc SDK) joining with the gateway's token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from livekit import rtc

from tests.support.gateway import create_session, metric
from tests.support.polling import poll_until
from tests.support.real_stack import AGENT_NAME, RealStack
from tests.support.rtc_user import joined_user

pytestmark = pytest.mark.slow
SESSION_ATTRIBUTE = "voice_gateway.session_id"  # what examples/agent/agent.py shows the room
ROOM_FINISHED = 'voice_gateway_webhook_events_total{event="room_finished"}'


async def test_the_agent_joins_and_the_user_hears_it(real_stack: RealStack) -> None:
    async with real_stack.gateway() as gateway:
        created = await create_session(gateway, agent_id=AGENT_NAME)
        session = created.json()
        agent_joined_s = await real_stack.wait_for_agent_in(session["room_name"], timeout_s=10)
        async with joined_user(session["livekit_url"], session["token"]) as user:
            heard_s = await user.hear_agent(timeout_s=5)
            agent = await user.wait_for_agent(timeout_s=1)
            served = await user.wait_for_attribute(agent, SESSION_ATTRIBUTE, timeout_s=2)

    assert created.status_code == 201
    assert agent_joined_s < 10
    assert heard_s < 5
    assert served == session["session_id"]


async def test_the_session_lists_the_user_and_the_agent_by_kind(real_stack: RealStack) -> None:
    async with real_stack.gateway() as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        await real_stack.wait_for_agent_in(session["room_name"], timeout_s=10)
        async with joined_user(session["livekit_url"], session["token"]):
            read = await gateway.get(f"/api/voice/session/{session['room_name']}")

    kinds = {p["identity"]: p["kind"] for p in read.json()["participants"]}
    assert read.status_code == 200
    assert kinds.pop("nate") == "STANDARD"
    assert list(kinds.values()) == ["AGENT"]


async def test_delete_disconnects_everyone_and_livekit_confirms_it(real_stack: RealStack) -> None:
    async with real_stack.gateway() as gateway:
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        room = session["room_name"]
        await real_stack.wait_for_agent_in(room, timeout_s=10)
        async with joined_user(session["livekit_url"], session["token"]) as user:
            await user.hear_agent(timeout_s=5)
            log_before = len(real_stack.agent.log())
            ended = await gateway.delete(f"/api/voice/session/{room}")
            user_gone_s = await user.wait_until_disconnected(timeout_s=3)
            agent_gone_s = real_stack.agent.wait_for_log(f"left {room}", 3, after=log_before)
            # The real server's room_finished, its signature verified by the gateway.
            await _wait_for_metric(gateway, ROOM_FINISHED, timeout_s=10)

    assert ended.status_code == 204
    assert user_gone_s < 3
    assert agent_gone_s < 3
    assert room not in await real_stack.livekit.rooms()


async def _wait_for_metric(gateway: httpx.AsyncClient, line: str, timeout_s: float) -> None:
    await poll_until(lambda: metric(gateway, line), timeout_s)


async def test_the_reaper_ends_a_live_session_at_its_expiry(real_stack: RealStack) -> None:
    lifetime_s = 6
    async with real_stack.gateway(reaper_interval_s=0.25) as gateway:
        created = await create_session(
            gateway, agent_id=AGENT_NAME, session_duration_hours=lifetime_s / 3600
        )
        session = created.json()
        expires_at = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00"))
        await real_stack.wait_for_agent_in(session["room_name"], timeout_s=5)
        async with joined_user(session["livekit_url"], session["token"]) as user:
            await user.hear_agent(timeout_s=5)
            await user.wait_until_disconnected(timeout_s=lifetime_s + 5)
            ended_at = datetime.now(UTC)

    assert user.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED
    # Whole seconds in expires_at; the sweep runs every quarter second.
    assert timedelta(seconds=-1) <= ended_at - expires_at < timedelta(seconds=3)
    assert session["room_name"] not in await real_stack.livekit.rooms()


async def test_a_token_endpoint_join_makes_the_room_and_the_agent_comes(
    real_stack: RealStack,
) -> None:
    ask = {"participant_identity": "nate", "room_config": {"agents": [{"agent_name": AGENT_NAME}]}}
    async with real_stack.gateway() as gateway:
        issued = await gateway.post("/api/voice/token", json=ask)
        answer = issued.json()
        room = answer["room_name"]
        rooms_before_join = await real_stack.livekit.rooms()
        async with joined_user(answer["server_url"], answer["participant_token"]) as user:
            heard_s = await user.hear_agent(timeout_s=10)
            agent = await user.wait_for_agent(timeout_s=1)
            served = await user.wait_for_attribute(agent, SESSION_ATTRIBUTE, timeout_s=2)
            read = await gateway.get(f"/api/voice/session/{room}")

    assert issued.status_code == 201
    assert room not in rooms_before_join  # LiveKit made it from the token's room configuration
    assert heard_s < 10
    assert served == read.json()["session_id"]

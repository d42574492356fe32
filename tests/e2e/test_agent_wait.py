"""`"wait_for_agent": true` on the real server with the example agent: the answer comes with the
agent in the room, within 300 ms of its join; an agent that never comes is a 504 and no room."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.gateway import create_session
from tests.support.real_stack import AGENT_NAME, RealStack
from tests.support.rtc_user import joined_user

pytestmark = pytest.mark.slow
NO_WORKER = "absent-agent"


async def test_the_answer_comes_within_300_ms_of_the_agents_join(real_stack: RealStack) -> None:
    async with real_stack.gateway() as gateway:
        created = await create_session(gateway, agent_id=AGENT_NAME, wait_for_agent=True)
        answered_at = datetime.now(UTC)
        session = created.json()
        in_room = [p.identity for p in await real_stack.participants(session["room_name"])]
        async with joined_user(session["livekit_url"], session["token"]) as user:
            heard_s = await user.hear_agent(timeout_s=10)
    joined_at = datetime.fromisoformat(session["agent"]["joined_at"].replace("Z", "+00:00"))

    assert created.status_code == 201
    assert session["agent"]["identity"] in in_room
    assert (answered_at - joined_at).total_seconds() < 0.3  # LiveKit's join time, same clock
    # Heard at all: the agent the answer named is live. How soon is the bench's (the first
    # WebRTC session of a suite took 4.9 s once in CI, where 2 s were asserted before).
    assert heard_s < 10


async def test_an_agent_that_never_comes_is_a_504_and_its_room_is_gone(
    real_stack: RealStack,
) -> None:
    async with real_stack.gateway(agent_wait_s=1, allowed_agents=[NO_WORKER]) as gateway:
        refused = await create_session(gateway, agent_id=NO_WORKER, wait_for_agent=True)
    rooms = await real_stack.livekit.rooms()

    assert refused.status_code == 504
    assert refused.json()["code"] == "agent_timeout"
    assert not [name for name in rooms if name.startswith(f"foundry_nate_{NO_WORKER}_")]

"""Session events from a real session: the real server's webhooks, the example agent and a WebRTC
user, delivered to a receiver that verifies them with the `standardwebhooks` library."""

from __future__ import annotations

import pytest

from tests.support.event_receiver import EVENTS_SECRET, EventReceiver, Received
from tests.support.gateway import create_session, serving
from tests.support.polling import wait_until
from tests.support.real_stack import AGENT_NAME, RealStack
from tests.support.rtc_user import joined_user

pytestmark = pytest.mark.slow
NO_WORKER = "absent-agent"  # a name no worker serves: its dispatch never gets a job


async def test_a_real_session_sends_every_event_in_order(real_stack: RealStack) -> None:
    receiver = EventReceiver()
    async with (
        serving(receiver) as receiver_url,
        real_stack.gateway(
            solo_timeout_s=2, events_url=[receiver_url], events_secret=EVENTS_SECRET
        ) as gateway,
    ):
        session = (await create_session(gateway, agent_id=AGENT_NAME)).json()
        sid = session["session_id"]
        await real_stack.wait_for_agent_in(session["room_name"], timeout_s=10)
        # Its webhook too: LiveKit sends webhooks from 10 workers, which earlier tests' rooms can
        # keep busy retrying, so the user's join could be heard before the agent's.
        await wait_until(lambda: "session.agent_joined" in receiver.types_of(sid), timeout_s=15)
        async with joined_user(session["livekit_url"], session["token"]) as user:
            await user.hear_agent(timeout_s=10)
        await wait_until(lambda: "session.ended" in receiver.types_of(sid), timeout_s=15)
        await wait_until(lambda: "session.agent_left" in receiver.types_of(sid), timeout_s=5)

    events = receiver.of_session(sid)
    unique = first_of_each_id(events)  # as a receiver deduplicates
    # In sequence order, as a receiver that needs it sorts: the real server's webhooks come from
    # 10 workers in parallel, so one join can be heard (and sent) after a later one.
    in_order = sorted(unique, key=lambda event: event.data["sequence"])
    seen = [(event.type, event.data["sequence"], event.webhook_id[:12]) for event in events]
    assert [event.type for event in in_order] == [
        "session.created",
        "session.agent_joined",
        "session.user_joined",
        "session.user_left",
        "session.agent_left",  # LiveKit's webhook of it, or the end's (the same id)
        "session.ended",
    ], seen
    assert unique[-1].type == "session.ended"  # nothing after it
    by_type = {event.type: event.data for event in unique}
    assert by_type["session.ended"]["end_reason"] == "user_left"
    assert by_type["session.user_left"]["participant"]["disconnect_reason"] == "CLIENT_INITIATED"
    assert by_type["session.agent_joined"]["participant"]["kind"] == "AGENT"
    assert receiver.unverified == 0


async def test_a_create_whose_agent_never_comes_sends_failed(real_stack: RealStack) -> None:
    receiver = EventReceiver()
    async with (
        serving(receiver) as receiver_url,
        real_stack.gateway(
            agent_wait_s=1,
            allowed_agents=[AGENT_NAME, NO_WORKER],
            events_url=[receiver_url],
            events_secret=EVENTS_SECRET,
        ) as gateway,
    ):
        refused = await create_session(gateway, agent_id=NO_WORKER, wait_for_agent=True)
        await wait_until(lambda: "session.ended" in types_for_agent(receiver, NO_WORKER))

    assert refused.status_code == 504
    # Only its own: the server's webhooks about earlier tests' rooms reach this gateway too.
    assert types_for_agent(receiver, NO_WORKER) == [
        "session.created",
        "session.failed",
        "session.ended",
    ]


def first_of_each_id(events: list[Received]) -> list[Received]:
    ids: set[str] = set()
    unique = []
    for event in events:
        if event.webhook_id not in ids:
            ids.add(event.webhook_id)
            unique.append(event)
    return unique


def types_for_agent(receiver: EventReceiver, agent_id: str) -> list[str]:
    return [event.type for event in receiver.received if event.data["agent_id"] == agent_id]

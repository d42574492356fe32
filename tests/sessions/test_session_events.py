"""Session events to the app, on the stand-in with its simulated agents: every type, signed and
verified by a real receiver (the `standardwebhooks` library), retried through an outage with the
same ids, in sequence order per session, never in the way of a create. The real server's side:
tests/e2e/test_session_events.py."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import anyio
import pytest

from tests.support.event_gateway import EVERY_STEP, gateway, go_through_every_step
from tests.support.event_receiver import EventReceiver, Received
from tests.support.gateway import create_session, metric, serving
from tests.support.polling import poll_until, wait_until
from tests.support.processes import free_port
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")


async def every_step_delivered(standin: StandIn) -> tuple[dict[str, Any], list[Received]]:
    """A session gone through every step, and the events its receiver took, in arrival order."""
    standin.agents.serve("pm-agent", join_after_s=0.05)
    receiver = EventReceiver()
    async with serving(receiver) as receiver_url, gateway(standin, receiver_url) as client:
        session = await go_through_every_step(standin, client)
        sid = session["session_id"]
        await wait_until(lambda: len(receiver.of_session(sid)) == len(EVERY_STEP))
    assert receiver.unverified == 0
    return session, receiver.of_session(sid)


async def test_a_session_sends_every_event_from_created_to_ended(standin: StandIn) -> None:
    session, events = await every_step_delivered(standin)

    assert [event.type for event in events] == EVERY_STEP
    for event in events:
        assert event.data["room_name"] == session["room_name"]
        assert (event.data["user_id"], event.data["agent_id"]) == ("nate", "pm-agent")
    sequences = [event.data["sequence"] for event in events]
    assert sequences == sorted(sequences)
    assert sequences[0] == 0
    assert len({event.webhook_id for event in events}) == len(events)


async def test_participant_events_carry_identity_kind_and_disconnect_reason(
    standin: StandIn,
) -> None:
    _, events = await every_step_delivered(standin)

    by_type = {event.type: event.data for event in events}
    user_left = by_type["session.user_left"]["participant"]
    assert (user_left["identity"], user_left["kind"]) == ("nate", "STANDARD")
    assert user_left["disconnect_reason"] is not None
    agent = by_type["session.agent_joined"]["participant"]
    assert agent["kind"] == "AGENT"
    assert agent["identity"].startswith("agent-AJ_")
    assert agent["disconnect_reason"] is None


async def test_session_ended_says_why_when_and_how_long(standin: StandIn) -> None:
    _, events = await every_step_delivered(standin)

    ended = events[-1]
    assert ended.data["end_reason"] == "deleted"
    assert ended.data["started_at"] is not None  # the user joined
    times = [
        datetime.fromisoformat(ended.data[k]) for k in ("created_at", "started_at", "ended_at")
    ]
    assert times == sorted(times)
    assert 0 < ended.data["duration_s"] < 10
    assert ended.payload["timestamp"] == ended.data["ended_at"]


async def test_a_create_whose_agent_never_came_sends_failed_then_ended(standin: StandIn) -> None:
    receiver = EventReceiver()
    async with (
        serving(receiver) as receiver_url,
        gateway(standin, receiver_url, agent_wait_s=0.3) as client,
    ):
        refused = await create_session(client, wait_for_agent=True)
        await wait_until(lambda: "session.ended" in [e.type for e in receiver.received])

    assert refused.status_code == 504
    events = receiver.received  # of the one session
    assert [e.type for e in events] == ["session.created", "session.failed", "session.ended"]
    assert events[1].data["reason"] == "agent_timeout"
    assert events[2].data["end_reason"] == "agent_failed"
    assert events[2].data["started_at"] is None
    assert events[2].data["duration_s"] is None


async def test_a_receiver_down_for_a_while_gets_every_event_with_the_same_ids(
    standin: StandIn,
) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    port, receiver = free_port(), EventReceiver(status=503)
    receiver_url = f"http://127.0.0.1:{port}"
    async with gateway(standin, receiver_url) as client:
        async with serving(receiver, port):  # up, answering 503
            session = await go_through_every_step(standin, client)
            # One at a time per session: its first event is retried, the others wait behind it.
            await wait_until(lambda: len(receiver.attempted_ids) >= 2)
        await anyio.sleep(1.0)  # down: connections refused
        retried = await metric(client, "voice_gateway_events_total{")
        receiver.status = 204
        async with serving(receiver, port):  # back
            await wait_until(lambda: len(receiver.received) == len(EVERY_STEP), timeout_s=15)
        depth = await metric(client, "voice_gateway_event_queue_depth")

    delivered_ids = [event.webhook_id for event in receiver.received]
    first_id = receiver.attempted_ids[0]
    assert receiver.attempted_ids[:2] == [first_id, first_id]  # a retry keeps its id
    assert delivered_ids[0] == first_id
    assert set(delivered_ids) == set(receiver.attempted_ids)
    assert len(set(delivered_ids)) == len(EVERY_STEP)
    assert [e.type for e in receiver.of_session(session["session_id"])] == EVERY_STEP
    assert retried > 0
    assert depth == 0


async def test_one_failing_session_does_not_hold_back_another(standin: StandIn) -> None:
    receiver = EventReceiver()
    async with serving(receiver) as receiver_url, gateway(standin, receiver_url) as client:
        stuck = (await create_session(client)).json()
        receiver.failing_session = stuck["session_id"]
        await wait_until(lambda: receiver.attempted_ids != [])
        other = (await create_session(client, user_id="olga")).json()
        await wait_until(lambda: receiver.types_of(other["session_id"]) == ["session.created"])

    assert receiver.of_session(stuck["session_id"]) == []


async def test_a_slow_receiver_never_holds_up_a_create(standin: StandIn) -> None:
    receiver = EventReceiver(hold=anyio.Event())
    async with (
        serving(receiver) as receiver_url,
        gateway(standin, receiver_url, events_timeout_s=30) as client,
    ):
        answers = [await create_session(client, user_id=f"user-{n}") for n in range(5)]
        taken_while_held = len(receiver.received)
        assert receiver.hold is not None
        receiver.hold.set()
        await wait_until(lambda: len(receiver.received) == 5)

    assert [answer.status_code for answer in answers] == [201] * 5
    assert taken_while_held == 0  # every create was answered before any event was delivered


async def test_retried_too_long_an_event_is_dead_lettered_and_logged_once(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = EventReceiver(status=500)
    async with (
        serving(receiver) as receiver_url,
        gateway(standin, receiver_url, events_retry_for_s=1.0) as client,
    ):
        await create_session(client)

        async def dead() -> float:
            return await metric(client, 'voice_gateway_events_total{outcome="dead"')

        await poll_until(dead, timeout_s=10, interval_s=0.1)
        depth = await metric(client, "voice_gateway_event_queue_depth")

    assert depth == 0
    lines = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(lines) == 1
    assert "HTTP 500" in lines[0].getMessage()


async def test_a_receiver_outage_is_not_a_readiness_failure(standin: StandIn) -> None:
    async with gateway(standin, f"http://127.0.0.1:{free_port()}") as client:
        await create_session(client)
        ready = await client.get("/readyz")

    assert ready.status_code == 200


async def test_what_is_pending_at_shutdown_is_delivered_within_the_grace(
    standin: StandIn,
) -> None:
    receiver = EventReceiver(status=503)
    async with serving(receiver) as receiver_url:
        async with gateway(standin, receiver_url, shutdown_grace_s=5) as client:
            await create_session(client)
            await wait_until(lambda: receiver.attempted_ids != [])
            receiver.status = 204  # the retry comes after the lifespan started to stop
        delivered = len(receiver.received)

    assert delivered == 1


async def test_what_cannot_be_delivered_by_shutdown_is_dropped_and_logged(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "voice_gateway.events")
    closed = f"http://127.0.0.1:{free_port()}"
    async with gateway(standin, closed, shutdown_grace_s=0.5, shutdown_delay_s=0) as client:
        await create_session(client)

    assert any("1 event deliveries dropped at shutdown" in r.getMessage() for r in caplog.records)

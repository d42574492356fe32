"""Every end has one reason (closer.py), and the limits LiveKit lacks are the gateway's: the agent's
join timeout (agent_watch.py); the user-join and solo limits are LiveKit's own timeouts, named when
LiveKit closes the room (webhook_intake.py) or, its webhook lost, by the sweep (reaper.py). The
real server's side: tests/e2e/test_time_limits.py."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest
from livekit.protocol.models import ParticipantInfo

from tests.support.gateway import (
    create_session,
    gateway_over_http,
    make_settings,
    metric,
)
from tests.support.polling import poll_until, wait_until
from tests.support.records import session_record
from voice_gateway.livekit.clients import open_livekit
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions.admission import open_admission
from voice_gateway.sessions.closer import SessionCloser
from voice_gateway.sessions.endings import EndMark
from voice_gateway.sessions.event_outbox import EventOutbox
from voice_gateway.sessions.record import SessionRecord, now_to_the_second, record_of
from voice_gateway.standin import StandIn

WEBHOOK = "/api/voice/webhook"
ENDED = "voice_gateway_sessions_ended_total"
AGENT = ParticipantInfo.Kind.AGENT


def ended(reason: str) -> str:
    return f'{ENDED}{{reason="{reason}"}}'


def gateway(
    standin: StandIn, *, webhooks: bool = True, **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return gateway_over_http(standin, webhooks=webhooks, **overrides)


def mark_of(room_name: str) -> str:
    return room_name.replace("foundry_nate_pm-agent_", "foundry_ended_")


def observed_in(standin: StandIn, room_name: str) -> SessionRecord:
    record = record_of(room_name, standin.get_room(room_name).metadata, "foundry")
    assert record is not None
    return record


async def test_replicas_ending_one_session_at_once_count_one_end_with_one_reason(
    standin: StandIn,
) -> None:
    record = session_record(now_to_the_second(), session_id="sess_" + "R" * 22)
    standin.create_room(record.room_name("foundry"), metadata=record.to_metadata())
    reasons = ["deleted", "expired", "agent_failed", "user_left"] * 3
    metrics, results = Metrics(), []
    settings = make_settings(standin)
    async with (
        open_livekit(settings, metrics) as one,
        open_livekit(settings, metrics) as two,
        open_admission(settings, metrics) as admission,
    ):
        outbox = EventOutbox.off(metrics)
        closers = [
            SessionCloser(lk.rooms, "foundry", metrics, 900, admission, outbox) for lk in (one, two)
        ]

        async def end(number: int, reason: Any) -> None:
            results.append((reason, await closers[number % 2].close(record, reason)))

        async with anyio.create_task_group() as ends:
            for number, reason in enumerate(reasons):
                ends.start_soon(end, number, reason)
    mark = EndMark.model_validate_json(
        standin.get_room(f"foundry_ended_{record.session_id}").metadata
    )

    winners = [reason for reason, ended_here in results if ended_here]
    assert winners == [mark.reason]
    assert sum(metrics.sessions_ended.labels(r)._value.get() for r in set(reasons)) == 1
    assert not standin.has_room(record.room_name("foundry"))


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_room_livekit_closed_with_no_user_ever_in_it_ends_user_never_joined(
    standin: StandIn,
) -> None:
    async with gateway(standin, user_join_timeout_s=5) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.close_idle_rooms(now=time.time() + 6)
        await wait_until(lambda: standin.has_room(mark_of(room)))
        count = await poll_until(lambda: metric(client, ended("user_never_joined")), 2)

    assert count == 1


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_room_livekit_closed_after_its_user_left_ends_user_left(standin: StandIn) -> None:
    async with gateway(standin, user_join_timeout_s=300, solo_timeout_s=5) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.add_participant(room, "nate")
        await wait_until(lambda: observed_in(standin, room).observed.user_joined_at is not None)
        standin.remove_participant(room, "nate")
        standin.close_idle_rooms(now=time.time() + 6)
        await wait_until(lambda: not standin.has_room(room))
        await anyio.sleep(0.2)  # the room_finished webhook
        counts = [await metric(client, ended(r)) for r in ("user_left", "user_never_joined")]

    assert counts == [1, 0]


async def test_a_room_closed_while_its_webhook_was_lost_is_ended_by_the_sweep(
    standin: StandIn,
) -> None:
    async with gateway(standin, webhooks=False, reaper_interval_s=0.05) as client:
        room = (await create_session(client)).json()["room_name"]
        await anyio.sleep(0.2)  # a pass has seen it
        standin.state.store.delete_room(room)  # as LiveKit closing it, no webhook sent
        await wait_until(lambda: standin.has_room(mark_of(room)))
        count = await poll_until(lambda: metric(client, ended("user_never_joined")), 2)

    assert count == 1


async def test_an_agent_that_never_joins_ends_its_session_agent_failed(standin: StandIn) -> None:
    async with gateway(standin, webhooks=False, agent_join_timeout_s=1) as client:
        room = (await create_session(client)).json()["room_name"]
        await wait_until(lambda: not standin.has_room(room), timeout_s=4)
        count = await metric(client, ended("agent_failed"))

    assert count == 1


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_an_agent_that_joined_keeps_its_session(standin: StandIn) -> None:
    async with gateway(standin, agent_join_timeout_s=1) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.add_participant(room, "agent-AJ_1", kind=AGENT)
        await anyio.sleep(1.5)
        count = await metric(client, ended("agent_failed"))

    assert standin.has_room(room)
    assert count == 0
    assert observed_in(standin, room).observed.agent_identity == "agent-AJ_1"


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_an_agent_that_left_and_did_not_come_back_ends_its_session(standin: StandIn) -> None:
    async with gateway(standin, agent_join_timeout_s=1) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.add_participant(room, "agent-AJ_1", kind=AGENT)
        await wait_until(lambda: observed_in(standin, room).observed.agent_joined_at is not None)
        standin.remove_participant(room, "agent-AJ_1")
        left = time.monotonic()
        await wait_until(lambda: not standin.has_room(room), timeout_s=4)
        took_s = time.monotonic() - left
        count = await metric(client, ended("agent_failed"))

    assert count == 1
    assert took_s >= 0.9  # not before its time


async def test_the_sweep_ends_an_overdue_agents_session_another_replica_made(
    standin: StandIn,
) -> None:
    async with gateway(standin, webhooks=False, agent_join_timeout_s=0) as maker:
        room = (await create_session(maker)).json()["room_name"]
    async with gateway(
        standin, webhooks=False, agent_join_timeout_s=1, reaper_interval_s=0.1
    ) as sweeper:
        await wait_until(lambda: not standin.has_room(room), timeout_s=4)
        count = await metric(sweeper, ended("agent_failed"))

    assert count == 1


async def test_the_sweep_notes_an_agent_and_a_user_no_webhook_reported(standin: StandIn) -> None:
    async with gateway(
        standin, webhooks=False, agent_join_timeout_s=1, reaper_interval_s=0.1
    ) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.add_participant(room, "agent-AJ_1", kind=AGENT)
        standin.add_participant(room, "nate")
        await anyio.sleep(1.5)
        count = await metric(client, ended("agent_failed"))
    observed = observed_in(standin, room).observed

    assert count == 0
    assert observed.agent_identity == "agent-AJ_1"
    assert observed.user_joined_at is not None


async def test_with_the_agent_limit_off_no_session_ends_for_its_agent(standin: StandIn) -> None:
    async with gateway(
        standin, webhooks=False, agent_join_timeout_s=0, reaper_interval_s=0.1
    ) as client:
        room = (await create_session(client)).json()["room_name"]
        await anyio.sleep(1)

    assert standin.has_room(room)


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_token_sessions_agent_is_due_from_its_rooms_start_not_its_tokens(
    standin: StandIn,
) -> None:
    ask = {"participant_identity": "nate", "room_config": {"agents": [{"agent_name": "pm-agent"}]}}
    async with gateway(standin, agent_join_timeout_s=1, reaper_interval_s=0.1) as client:
        issued = (await client.post("/api/voice/token", json=ask)).json()
        await anyio.sleep(1.5)  # the token is older than the limit when its room starts
        standin.join(issued["participant_token"])
        await anyio.sleep(0.5)
        standing = standin.has_room(issued["room_name"])
        await wait_until(lambda: not standin.has_room(issued["room_name"]), timeout_s=3)

    assert standing


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_an_agent_that_left_unreported_is_found_gone_by_the_sweep(standin: StandIn) -> None:
    async with gateway(standin, agent_join_timeout_s=1, reaper_interval_s=0.05) as client:
        room = (await create_session(client)).json()["room_name"]
        standin.add_participant(room, "nate")
        standin.add_participant(room, "agent-AJ_1", kind=AGENT)
        await wait_until(lambda: observed_in(standin, room).observed.agent_joined_at is not None)
        standin.set_webhook_urls([])  # its participant_left is lost
        standin.remove_participant(room, "agent-AJ_1")
        await wait_until(lambda: not standin.has_room(room), timeout_s=5)
        count = await poll_until(lambda: metric(client, ended("agent_failed")), 2)

    assert count == 1

"""`"wait_for_agent": true` on create: the answer comes once the agent is in the room, or the
session ends with a 504 / 503. The real server's side: tests/e2e/test_agent_wait.py."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest

from tests.support.gateway import (
    create_session,
    gateway_over_http,
    metric,
)
from voice_gateway.sessions import agent_wait
from voice_gateway.standin import StandIn

WEBHOOK = "/api/voice/webhook"
AGENT_FAILED = 'voice_gateway_sessions_ended_total{reason="agent_failed"}'


def gateway(
    standin: StandIn, *, webhooks: bool = False, **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return gateway_over_http(standin, webhooks=webhooks, **overrides)


async def test_the_answer_comes_with_the_agent_in_the_room(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.3)
    async with gateway(standin) as client:
        created = await create_session(client, wait_for_agent=True)
    body = created.json()

    assert created.status_code == 201
    assert body["agent"]["identity"].startswith("agent-AJ_")
    assert body["agent"]["joined_at"] is not None
    present = [p.identity for p in standin.list_participants(body["room_name"])]
    assert body["agent"]["identity"] in present


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_heard_by_webhook_the_join_is_answered_before_the_next_look(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looks 30 s apart: only the webhook can answer within the test's 10 s. The agent joins
    # 0.5 s after its dispatch, well after the first look even on a loaded machine (at 0.1 s, a
    # first look late by 0.1 s would already see it: one listing, not two).
    monkeypatch.setattr(agent_wait, "POLL_S", 30)
    standin.agents.serve("pm-agent", join_after_s=0.5)
    before = standin.requests_count("ListParticipants")
    async with gateway(standin, webhooks=True) as client:
        with anyio.fail_after(10):
            created = await create_session(client, wait_for_agent=True)
    listings = standin.requests_count("ListParticipants") - before

    assert created.status_code == 201
    assert listings == 2  # the first look (no agent yet), then the one the webhook woke


async def test_without_asking_to_wait_the_answer_is_as_before(standin: StandIn) -> None:
    before = standin.requests_count("ListParticipants")
    async with gateway(standin) as client:
        body = (await create_session(client)).json()

    assert "agent" not in body
    assert standin.requests_count("ListParticipants") == before


async def test_an_agent_that_does_not_come_in_time_is_a_504_and_no_session(
    standin: StandIn,
) -> None:
    async with gateway(standin, agent_wait_s=1) as client:
        started = time.monotonic()
        refused = await create_session(client, wait_for_agent=True)
        took_s = time.monotonic() - started
        ended = await metric(client, AGENT_FAILED)

    assert refused.status_code == 504
    assert refused.json()["code"] == "agent_timeout"
    assert 1 <= took_s < 2
    assert ended == 1
    assert not [name for name in standin.rooms if name.startswith("foundry_nate_")]


async def test_an_agent_whose_job_failed_is_a_503_and_no_session(standin: StandIn) -> None:
    standin.agents.fail("pm-agent")
    async with gateway(standin, agent_wait_s=5) as client:
        refused = await create_session(client, wait_for_agent=True)

    assert refused.status_code == 503
    assert refused.json()["code"] == "agent_unavailable"
    assert not [name for name in standin.rooms if name.startswith("foundry_nate_")]


async def test_the_waiting_create_looks_a_few_times_a_second(standin: StandIn) -> None:
    before = [standin.requests_count(m) for m in ("ListParticipants", "ListDispatch")]
    async with gateway(standin, agent_wait_s=2) as client:
        await create_session(client, wait_for_agent=True)
    after = [standin.requests_count(m) for m in ("ListParticipants", "ListDispatch")]
    listings, dispatch_looks = (a - b for a, b in zip(after, before, strict=True))

    # Two seconds of looking: every quarter second, the room and the dispatch once a second.
    assert 7 <= listings <= 9
    assert 1 <= dispatch_looks <= 2


async def test_wait_for_agent_must_be_a_boolean(standin: StandIn) -> None:
    async with gateway(standin) as client:
        refused = await create_session(client, wait_for_agent="soon")

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "wait_for_agent"


async def test_a_session_ended_meanwhile_answers_at_once_not_at_the_deadline(
    standin: StandIn,
) -> None:
    # The agent's own limit (1 s) ends the session while the create waits up to 5 s for it.
    async with gateway(standin, agent_wait_s=5, agent_join_timeout_s=1) as client:
        started = time.monotonic()
        refused = await create_session(client, wait_for_agent=True)
        took_s = time.monotonic() - started

    assert refused.status_code == 409
    assert refused.json()["code"] == "session_ended"
    assert took_s < 3


async def test_a_key_retried_after_a_504_does_not_start_the_session_again(
    standin: StandIn,
) -> None:
    key = {"Idempotency-Key": "order-9"}
    body = {"user_id": "nate", "agent_id": "pm-agent", "wait_for_agent": True}
    async with gateway(standin, agent_wait_s=1) as client:
        first = await client.post("/api/voice/session", json=body, headers=key)
        retried = await client.post("/api/voice/session", json=body, headers=key)

    assert first.status_code == 504
    assert retried.status_code == 409
    assert retried.json()["code"] == "session_ended"
    assert not [name for name in standin.rooms if name.startswith("foundry_nate_")]

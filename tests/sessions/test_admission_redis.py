"""Session caps across replicas sharing VOICE_GATEWAY_REDIS_URL (a real redis-server): exact under
concurrent creates on both, a slot freed on either, a crashed replica's reservations dropped."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.caps import (
    USAGE,
    concurrent_creates,
    gateway_count,
    own_prefix,
    wait_for_gateway_count,
)
from tests.support.gateway import create_session, make_settings, running_gateway
from tests.support.join_tokens import TOKEN
from tests.support.problems import assert_problem
from tests.support.processes import free_port
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn


def shared(standin: StandIn, redis_url: str, **overrides: Any) -> Settings:
    values = {"room_prefix": own_prefix(), "redis_url": redis_url, "max_sessions_per_user": 3}
    return make_settings(standin, **(values | overrides))


async def test_fifty_concurrent_creates_on_two_replicas_admit_exactly_three(
    standin: StandIn, redis_url: str
) -> None:
    settings = shared(standin, redis_url)
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        statuses = await concurrent_creates([first, second], 50)
        counts = (await gateway_count(first), await gateway_count(second))

    assert statuses == {201: 3, 429: 47}
    assert counts == (3, 3)


async def test_a_slot_taken_on_one_replica_is_freed_by_delete_on_the_other(
    standin: StandIn, redis_url: str
) -> None:
    settings = shared(standin, redis_url, max_sessions_per_user=1)
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        room_name = (await create_session(first)).json()["room_name"]
        refused = await create_session(second)
        await second.delete(f"/api/voice/session/{room_name}")
        admitted = await create_session(first)

    assert_problem(refused, 429, "concurrency_limit")
    assert admitted.status_code == 201


async def test_a_crashed_replicas_token_reservation_is_dropped_by_another_after_the_grace(
    standin: StandIn, redis_url: str
) -> None:
    settings = shared(standin, redis_url, max_sessions_per_user=1, reservation_grace_s=1)
    crashing = settings.model_copy(update={"reaper_interval_s": 3600})
    async with running_gateway(crashing) as replica:
        await replica.post(TOKEN, json={"participant_identity": "nate"})
    # Gone without a word; nobody joins with its token. The survivor sweeps.
    async with running_gateway(settings.model_copy(update={"reaper_interval_s": 0.05})) as other:
        assert await gateway_count(other) == 1
        await wait_for_gateway_count(other, 0)
        admitted = await other.post(TOKEN, json={"participant_identity": "nate"})

    assert admitted.status_code == 201


async def test_an_unreachable_redis_admits_sessions_and_says_so_once(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    settings = shared(standin, f"redis://127.0.0.1:{free_port()}/0", max_sessions_per_user=1)
    with caplog.at_level(logging.WARNING, logger="voice_gateway.admission"):
        async with running_gateway(settings) as client:
            statuses = [(await create_session(client)).status_code for _ in range(3)]
            usage = await client.get(USAGE)

    assert statuses == [201] * 3
    assert_problem(usage, 503, "admission_store_unavailable")
    assert caplog.text.count("session-cap store failed") == 1

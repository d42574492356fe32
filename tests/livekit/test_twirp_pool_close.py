"""After the pool is closed (the lifespan's shutdown) no call opens a connection to LiveKit:
calls waiting for one, and later ones, fail at once as LiveKit unreachable, which the gateway
answers 503 `livekit_unavailable`. The pool against a server of the test's own."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from livekit import api

from tests.livekit.test_twirp_pool import answer_room, livekit_like
from tests.livekit.test_twirp_pool_turns import KEEP_ALIVE, PATH, create, slow_livekit
from tests.support.gateway import make_settings_for
from tests.support.polling import wait_until
from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.livekit.rooms import open_livekit_calls
from voice_gateway.livekit.twirp_pool import CLOSED, TwirpPool, Unreachable
from voice_gateway.ops.metrics import Metrics
from voice_gateway.web.problems import problem_of

AT_ONCE_S = 0.5  # far under any LiveKit deadline: nothing was waited for


async def test_a_call_after_aclose_fails_at_once_and_opens_nothing() -> None:
    async with livekit_like(answer_room) as (url, seen):
        pool = TwirpPool(url, 4)
        await pool.post(PATH, "token", create("before"))
        await pool.aclose()
        started = time.monotonic()
        with pytest.raises(Unreachable) as raised:
            await pool.post(PATH, "token", create("after"))
        elapsed = time.monotonic() - started
        await wait_until(lambda: seen.open_now == 0)  # the idle one was closed

    assert raised.value.why == CLOSED
    assert elapsed < AT_ONCE_S
    assert seen.connections == 1
    assert seen.creates() == [1]


async def test_calls_waiting_at_aclose_fail_at_once_and_the_call_in_flight_ends() -> None:
    asked: list[str] = []
    async with livekit_like(slow_livekit(KEEP_ALIVE, asked)) as (url, seen):
        pool = TwirpPool(url, 1)
        async with asyncio.timeout(5):
            in_flight = asyncio.create_task(pool.post(PATH, "token", create("in-flight")))
            await asyncio.sleep(0)  # it holds the one connection
            waiting = asyncio.create_task(pool.post(PATH, "token", create("waiting")))
            await asyncio.sleep(0)
            await pool.aclose()
            with pytest.raises(Unreachable) as raised:
                await waiting
            assert not in_flight.done()  # failed before the connection came back
            answer = await in_flight
            await wait_until(lambda: seen.open_now == 0)  # closed as its call ended

    assert raised.value.why == CLOSED
    assert answer.status == 200
    assert asked == ["in-flight"]
    assert seen.connections == 1


async def test_a_call_after_the_livekit_client_closed_is_livekit_unavailable_503() -> None:
    metrics = Metrics()
    async with livekit_like(answer_room) as (url, seen):
        settings = make_settings_for(url)
        async with open_livekit_calls(settings, anyio.CapacityLimiter(2), metrics) as calls:
            await calls("CreateRoom", api.CreateRoomRequest(name="before"), api.Room)
        with pytest.raises(LiveKitUnavailable) as raised:  # a straggler after the shutdown
            await calls("CreateRoom", api.CreateRoomRequest(name="after"), api.Room)

    assert problem_of(raised.value).status == 503
    assert raised.value.code == "livekit_unavailable"
    assert "the gateway is stopping" in raised.value.detail
    assert seen.connections == 1
    labels = {"method": "CreateRoom", "outcome": "livekit_unavailable"}
    assert (
        metrics.registry.get_sample_value("voice_gateway_livekit_call_seconds_count", labels) == 1
    )

"""The fault hooks: latency, injected errors, hung calls, and a LiveKit that goes away."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from livekit.api import CreateRoomRequest, ListRoomsRequest, LiveKitAPI, ServerError

from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import StandIn


async def test_latency_delays_every_call(lk: LiveKitAPI, standin: StandIn) -> None:
    standin.set_latency(0.2)
    started = time.monotonic()

    await lk.room.list_rooms(ListRoomsRequest())

    assert 0.2 <= time.monotonic() - started < 1.0


async def test_latency_does_not_serialise_concurrent_calls(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.set_latency(0.2)
    started = time.monotonic()

    await asyncio.gather(*(lk.room.list_rooms(ListRoomsRequest()) for _ in range(5)))

    assert time.monotonic() - started < 0.8


async def test_injected_failure_answers_until_cleared(lk: LiveKitAPI, standin: StandIn) -> None:
    standin.fail_next(status=503, code="unavailable", msg="down")
    for _ in range(2):
        with pytest.raises(ServerError) as caught:
            await lk.room.create_room(CreateRoomRequest(name="r1"))
        assert (caught.value.status, caught.value.code, caught.value.message) == (
            503,
            "unavailable",
            "down",
        )

    standin.clear_faults()

    assert (await lk.room.create_room(CreateRoomRequest(name="r1"))).name == "r1"


async def test_injected_failure_with_times_recovers_by_itself(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.fail_next(status=500, code="internal", times=1)

    with pytest.raises(ServerError):
        await lk.room.create_room(CreateRoomRequest(name="r1"))
    room = await lk.room.create_room(CreateRoomRequest(name="r1"))

    assert room.name == "r1"
    assert standin.requests_count("CreateRoom") == 2


async def test_hung_call_runs_into_the_callers_deadline(lk: LiveKitAPI, standin: StandIn) -> None:
    # The caller's own deadline: livekit-api 1.2.2 passes timeout=None per request, which
    # aiohttp reads as "no timeout", so LiveKitAPI(timeout=...) does not bound RoomService calls.
    standin.hang()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await lk.room.list_rooms(ListRoomsRequest())


async def test_calls_answer_again_once_the_hang_is_cleared(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.hang()
    pending = asyncio.create_task(lk.room.list_rooms(ListRoomsRequest()))
    await asyncio.sleep(0.1)
    assert not pending.done()

    standin.clear_faults()

    assert list((await pending).rooms) == []


async def test_stop_answers_hung_calls_and_returns_promptly() -> None:
    server = StandIn(API_KEY, API_SECRET)
    server.start()
    lk = LiveKitAPI(server.url, API_KEY, API_SECRET)
    try:
        server.hang()
        pending = asyncio.create_task(lk.room.list_rooms(ListRoomsRequest()))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
        with pytest.raises(ServerError) as caught:
            await pending
    finally:
        await lk.aclose()

    assert stopped_in < 1.0
    assert caught.value.status == 503


async def test_refused_connections_fail_and_accepting_again_keeps_port_and_rooms(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    port = standin.port

    standin.refuse_connections()
    with pytest.raises(aiohttp.ClientConnectionError):
        await lk.room.list_rooms(ListRoomsRequest())
    standin.accept_connections()

    assert standin.port == port
    assert [room.name for room in (await lk.room.list_rooms(ListRoomsRequest())).rooms] == ["r1"]


def test_requests_are_counted_by_method_whatever_their_outcome(standin: StandIn) -> None:
    async def calls() -> None:
        lk = LiveKitAPI(standin.url, API_KEY, "wrong-secret")
        try:
            with pytest.raises(ServerError):
                await lk.room.create_room(CreateRoomRequest(name="r1"))
        finally:
            await lk.aclose()

    asyncio.run(calls())

    assert standin.requests_count("CreateRoom") == 1
    assert standin.requests("CreateRoom")[0].status == 401
    assert standin.requests_count("DeleteRoom") == 0


async def test_latency_after_applies_the_call_before_the_late_answer(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.set_latency(0.5, after=True)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await lk.room.create_room(CreateRoomRequest(name="r1"))

    assert standin.has_room("r1")

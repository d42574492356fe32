"""Calls waiting for one of the pool's connections (all in use) get them in the order they came:
a connection given back, or the slot of one closed, goes to the call that has waited longest,
never back to the call that gave it while others wait; a waiting call cancelled just as it was
handed one passes it on. The pool against a server of the test's own."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api

from tests.livekit.test_twirp_pool import Behaviour, livekit_like
from voice_gateway.livekit.twirp_pool import TwirpPool

PATH = "/twirp/livekit.RoomService/CreateRoom"
CALL_S = 0.02  # each answer's delay: calls overlap, so later ones wait for the one connection
KEEP_ALIVE, CLOSE = "keep-alive", "close"  # how each answer leaves its connection


def create(name: str) -> bytes:
    return api.CreateRoomRequest(name=name).SerializeToString()


def slow_livekit(connection: str, asked: list[str]) -> Behaviour:
    """Answers each CreateRoom after CALL_S, keeping or closing its connection; notes the name."""

    async def answer(writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest) -> bool:
        asked.append(ask.name)
        await asyncio.sleep(CALL_S)
        body = api.Room(name=ask.name).SerializeToString()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\nConnection: {connection}"
        writer.write(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        return connection == KEEP_ALIVE

    return answer


@pytest.mark.parametrize("connection", [KEEP_ALIVE, CLOSE])
async def test_calls_waiting_for_the_one_connection_are_served_in_the_order_they_came(
    connection: str,
) -> None:
    asked: list[str] = []

    async def caller(pool: TwirpPool, who: str, calls: int) -> None:
        for call in range(calls):  # one after another, as a create's calls go
            await pool.post(PATH, "token", create(f"{who}-{call}"))

    async with livekit_like(slow_livekit(connection, asked)) as (url, seen):
        pool = TwirpPool(url, 1)
        try:
            async with asyncio.timeout(10), asyncio.TaskGroup() as callers:
                for who in "abcd":
                    callers.create_task(caller(pool, who, 3))
        finally:
            await pool.aclose()

    # Round by round: each call's next one waits behind those that waited before it (before, a
    # caller took its connection straight back and a woken waiter went to the back: b-0 came
    # after a-2, and with more callers some waited many rounds).
    assert asked == [f"{who}-{call}" for call in range(3) for who in "abcd"]
    assert seen.connections == (1 if connection == KEEP_ALIVE else 12)
    assert seen.most_open == 1


@pytest.mark.parametrize("connection", [KEEP_ALIVE, CLOSE])
async def test_a_waiting_call_cancelled_as_it_is_handed_the_connection_passes_it_on(
    connection: str,
) -> None:
    asked: list[str] = []
    async with livekit_like(slow_livekit(connection, asked)) as (url, seen):
        pool = TwirpPool(url, 1)
        try:

            async def first() -> None:
                await pool.post(PATH, "token", create("first"))
                # The connection (or its slot) was handed to `second` as this call ended, and
                # `second` has not run since.
                second.cancel()

            async with asyncio.timeout(5):
                first_call = asyncio.create_task(first())
                await asyncio.sleep(0)  # it takes the one connection; the others wait for it
                second = asyncio.create_task(pool.post(PATH, "token", create("second")))
                third = asyncio.create_task(pool.post(PATH, "token", create("third")))
                await first_call
                with pytest.raises(asyncio.CancelledError):
                    await second
                answer = await third  # would wait for ever had `second` kept its turn
        finally:
            await pool.aclose()

    assert answer.status == 200
    assert asked == ["first", "third"]
    assert seen.most_open == 1


async def test_a_call_cancelled_while_it_waits_is_passed_over() -> None:
    asked: list[str] = []
    async with livekit_like(slow_livekit(KEEP_ALIVE, asked)) as (url, seen):
        pool = TwirpPool(url, 1)
        try:
            async with asyncio.timeout(5):
                first = asyncio.create_task(pool.post(PATH, "token", create("first")))
                await asyncio.sleep(0)
                second = asyncio.create_task(pool.post(PATH, "token", create("second")))
                third = asyncio.create_task(pool.post(PATH, "token", create("third")))
                await asyncio.sleep(0)  # both wait now
                second.cancel()
                await first
                answer = await third
        finally:
            await pool.aclose()

    assert second.cancelled()
    assert answer.status == 200
    assert asked == ["first", "third"]
    assert seen.connections == 1

"""The Redis event queue (a real redis-server): a delivery appended is claimed once and gone once
acknowledged; replicas split the partitions fairly; an entry held by a replica that stopped is
taken over once its lease lapses, and one handed over with its partition is no longer the old
holder's to send, while one in a partition its live holder keeps is never taken; dead letters land
in their own stream, with error and attempts, and can be re-queued; the same event twice is one
delivery; an append Redis does not take raises; a gateway on Redis delivers a session's every
event through the stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import coredis
import httpx
import pytest
from coredis.response.types import StreamPending

from tests.support.event_gateway import EVERY_STEP, go_through_every_step
from tests.support.event_receiver import EVENTS_SECRET, EventReceiver
from tests.support.gateway import make_settings, metric, serving, serving_gateway
from tests.support.polling import poll_until, wait_until
from tests.support.processes import free_port
from tests.support.records import session_record
from voice_gateway.sessions import events
from voice_gateway.sessions.event_dead_letters import DeadLetters
from voice_gateway.sessions.event_leases import PARTITIONS, partition_of
from voice_gateway.sessions.event_queue import STORE_RETRY_S, Delivery, EventQueueUnavailable
from voice_gateway.sessions.event_queue_redis import (
    EventKeys,
    RedisEventQueue,
    open_redis_event_queue,
)
from voice_gateway.standin import StandIn

URL = "http://app/events"
LEASE_S = 1.5  # the lease these tests use: 30 s in production
FAST = {"lease_s": LEASE_S, "safety_s": 0.5, "block_s": 0.1}


def delivery(session_id: str = "sess_" + "A" * 22) -> Delivery:
    record = session_record(datetime.now(UTC), session_id=session_id)
    return Delivery(events.created(record, record.room_name("foundry")), URL)


def session_in(partitions: range) -> str:
    """A session id whose partition is in `partitions`."""
    return next(sid for n in range(1000) if partition_of(sid := f"sess_{n:022d}") in partitions)


@pytest.fixture
def prefix() -> str:
    return f"evq-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[coredis.Redis[str]]:
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.connection_pool.disconnect()


async def depth(redis: coredis.Redis[str], prefix: str) -> int:
    return sum([await redis.xlen(stream) for stream in EventKeys(prefix).streams])


async def pending(redis: coredis.Redis[str], prefix: str) -> int:
    count = 0
    for stream in EventKeys(prefix).streams:
        summary = await redis.xpending(stream, "delivery")
        assert isinstance(summary, StreamPending)
        count += summary.pending
    return count


async def emptied(redis: coredis.Redis[str], prefix: str) -> bool:
    return await depth(redis, prefix) == 0


async def keep_claiming(queue: RedisEventQueue, seconds: float) -> list[Delivery]:
    """What `queue` claims in `seconds` of claiming (its leases renewed all along)."""
    claimed: list[Delivery] = []
    with anyio.move_on_after(seconds):
        while True:
            claimed += await queue.claim()
    return claimed


async def claim_within(queue: RedisEventQueue, seconds: float) -> list[Delivery]:
    with anyio.move_on_after(seconds):
        return await queue.claim()
    return []


async def test_a_delivery_appended_is_claimed_and_gone_once_acknowledged(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent = delivery()
    async with open_redis_event_queue(redis_url, prefix, **FAST) as queue:
        await queue.append([sent])
        claimed = await claim_within(queue, 5)
        depth_while_held = queue.depth()
        await queue.ack(claimed[0])
        again = await claim_within(queue, 3 * LEASE_S)  # nothing left to take over either

    assert claimed == [sent]
    assert claimed[0].event.body() == sent.event.body()  # what is signed survives the trip
    assert depth_while_held == 1
    assert again == []
    assert await depth(redis, prefix) == 0


async def test_two_replicas_split_the_partitions_fairly(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as first,
        open_redis_event_queue(redis_url, prefix, **FAST) as second,
        anyio.create_task_group() as both,
    ):
        both.start_soon(keep_claiming, first, 4 * LEASE_S)
        await anyio.sleep(LEASE_S)  # the first has taken every partition by now
        both.start_soon(keep_claiming, second, 3 * LEASE_S)
        await anyio.sleep(2.5 * LEASE_S)
        owned = (first.leases.owned, second.leases.owned)

    assert len(owned[0]) == len(owned[1]) == PARTITIONS // 2
    assert owned[0] | owned[1] == set(range(PARTITIONS))


async def test_an_entry_held_by_a_replica_that_stopped_is_taken_over_once_its_lease_lapses(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent = delivery()
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as crashed,
        open_redis_event_queue(redis_url, prefix, **FAST) as survivor,
    ):
        await crashed.append([sent])
        assert await claim_within(crashed, 5) == [sent]  # and then it is never heard of again
        before_lapse = await claim_within(survivor, LEASE_S / 3)
        taken_over = await claim_within(survivor, 5)
        await survivor.ack(taken_over[0])

    assert before_lapse == []
    assert taken_over == [sent]
    assert not crashed.still_ours(sent)  # its leases lapsed: it would not send it either
    assert await depth(redis, prefix) == 0
    assert await pending(redis, prefix) == 0


async def test_a_partition_handed_to_a_new_replica_takes_its_pending_entries_along(
    redis_url: str, prefix: str
) -> None:
    # The first replica keeps the lower half of the partitions when a second one comes.
    moving = delivery(session_in(range(PARTITIONS // 2, PARTITIONS)))
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as holder,
        open_redis_event_queue(redis_url, prefix, **FAST) as newcomer,
    ):
        await holder.append([moving])
        assert await claim_within(holder, 5) == [moving]
        assert holder.still_ours(moving)
        async with anyio.create_task_group() as both:
            both.start_soon(keep_claiming, holder, 4 * LEASE_S)
            taken = await keep_claiming(newcomer, 4 * LEASE_S)

    assert taken == [moving]
    assert not holder.still_ours(moving)  # the lane holding it drops it: the newcomer sends it


async def test_an_entry_in_a_partition_its_live_holder_keeps_is_not_taken_over(
    redis_url: str, prefix: str
) -> None:
    staying = delivery(session_in(range(PARTITIONS // 2)))
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as holder,
        open_redis_event_queue(redis_url, prefix, **FAST) as other,
    ):
        await holder.append([staying])
        assert await claim_within(holder, 5) == [staying]
        async with anyio.create_task_group() as both:
            both.start_soon(keep_claiming, holder, 5 * LEASE_S)
            taken = await keep_claiming(other, 5 * LEASE_S)  # past the backstop sweep too
        still_the_holders = holder.still_ours(staying)

    assert taken == []
    assert still_the_holders


async def test_a_dead_letter_lands_in_the_dead_stream_with_its_error(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent = delivery()
    async with open_redis_event_queue(redis_url, prefix, **FAST) as queue:
        await queue.append([sent])
        [claimed] = await claim_within(queue, 5)
        await queue.dead_letter(claimed, "HTTP 500", 17)
        dead = [letter async for letter in DeadLetters(redis, prefix).all()]

    assert [(d.delivery, d.error, d.attempts) for d in dead] == [(sent, "HTTP 500", 17)]
    assert await redis.xlen(EventKeys(prefix).dead) == 1
    assert await depth(redis, prefix) == 0
    assert await pending(redis, prefix) == 0


async def test_a_dead_letter_resent_is_claimed_again_with_its_id_and_a_fresh_retry_window(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent = delivery()
    letters = DeadLetters(redis, prefix)
    async with open_redis_event_queue(redis_url, prefix, **FAST) as queue:
        await queue.append([sent])
        [claimed] = await claim_within(queue, 5)
        await queue.dead_letter(claimed, "HTTP 500", 3)
        dead = [letter async for letter in letters.all()]
        resent = await letters.resend(dead)
        again = await letters.resend(dead)  # someone else was quicker: sent once
        [back] = await claim_within(queue, 5)

    assert (resent, again) == (1, 0)
    assert back.event == sent.event
    assert back.queued_at > sent.queued_at
    assert [letter async for letter in letters.all()] == []


async def test_the_same_event_appended_twice_by_two_replicas_is_one_delivery(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent = delivery()
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as first,
        open_redis_event_queue(redis_url, prefix, **FAST) as second,
    ):
        await first.append([sent])
        await second.append([sent, delivery("sess_" + "B" * 22)])

    assert await depth(redis, prefix) == 2


async def test_an_append_redis_does_not_take_raises() -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    async with open_redis_event_queue(unreachable, "evq-down", **FAST) as queue:
        with pytest.raises(EventQueueUnavailable):
            await queue.append([delivery()])


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_gateway_on_redis_delivers_every_step_of_a_session_in_order(
    standin: StandIn, redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    receiver = EventReceiver()
    values = {
        "room_prefix": prefix,
        "redis_url": redis_url,
        "events_url": [],
        "events_secret": EVENTS_SECRET,
        "shutdown_grace_s": 2,
        "shutdown_delay_s": 0,
    }
    async with serving(receiver) as receiver_url:
        settings = make_settings(standin, **(values | {"events_url": [receiver_url]}))
        async with serving_gateway(settings) as url:
            standin.set_webhook_urls([f"{url}/api/voice/webhook"])
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                session = await go_through_every_step(standin, client)
                sid = session["session_id"]
                await wait_until(lambda: len(receiver.of_session(sid)) == 6, timeout_s=15)
                await poll_until(lambda: emptied(redis, prefix), timeout_s=5)
                await anyio.sleep(0.1 + 1.0)  # a claim's round: the gauges read from Redis
                owned = await metric(client, "voice_gateway_event_partitions_owned")
                queued = await metric(client, "voice_gateway_event_queue_depth")

    assert receiver.types_of(sid) == EVERY_STEP
    assert (owned, queued) == (PARTITIONS, 0)  # the one replica delivers every partition
    assert receiver.unverified == 0


async def test_a_redis_that_lost_its_data_gets_its_group_back_and_serves_again(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    async with open_redis_event_queue(redis_url, prefix, **FAST) as queue:
        await queue.append([delivery()])
        [first] = await claim_within(queue, 5)
        await queue.ack(first)
        await redis.delete(EventKeys(prefix).streams)  # Redis restarted without persistence
        later = delivery("sess_" + "D" * 22)
        await queue.append([later])
        claimed = await claim_within(queue, 3 * STORE_RETRY_S)

    assert claimed == [later]


async def test_a_stopped_replicas_whole_backlog_is_taken_over_and_it_leaves_the_group(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    backlog = [delivery(f"sess_{n:022d}") for n in range(3000)]  # more than one claim takes over
    async with (
        open_redis_event_queue(redis_url, prefix, **FAST) as crashed,
        open_redis_event_queue(redis_url, prefix, **FAST) as survivor,
    ):
        await crashed.append(backlog)
        held: list[Delivery] = []
        while len(held) < len(backlog):
            held += await crashed.claim()
        taken: list[Delivery] = []
        with anyio.fail_after(10 * LEASE_S):
            while len(taken) < len(backlog):
                taken += await survivor.claim()
        for taken_delivery in taken:
            await survivor.ack(taken_delivery)
        consumers = set()
        for stream in EventKeys(prefix).streams:
            consumers |= {c["name"] for c in await redis.xinfo_consumers(stream, "delivery")}

    assert sorted(d.key for d in taken) == sorted(d.key for d in backlog)
    assert consumers == {survivor.consumer}
    assert await depth(redis, prefix) == 0


async def test_a_replica_that_stops_gives_its_partitions_back_at_once(
    redis_url: str, prefix: str
) -> None:
    sent, slow_lapse = delivery(), {"lease_s": 30.0, "safety_s": 0.5, "block_s": 0.1}
    async with open_redis_event_queue(redis_url, prefix, **slow_lapse) as survivor:
        async with open_redis_event_queue(redis_url, prefix, **slow_lapse) as stopping:
            await stopping.append([sent])
            assert await claim_within(stopping, 5) == [sent]
        started = anyio.current_time()
        taken = await claim_within(survivor, 5)  # long before its 30 s lease would lapse
        waited_s = anyio.current_time() - started

    assert taken == [sent]
    assert waited_s < 2


async def test_a_claim_cut_short_by_a_stalled_redis_strands_nothing(
    redis_url: str, redis: coredis.Redis[str], prefix: str
) -> None:
    sent, long_lease = delivery(), {"lease_s": 30.0, "safety_s": 0.5, "block_s": 0.1}
    stream = EventKeys(prefix).stream_of(sent)
    async with open_redis_event_queue(redis_url, prefix, **long_lease) as queue:
        assert await claim_within(queue, 0.5) == []  # it holds every partition now
        await queue.append([sent])
        # As a read the deadline cut off: Redis handed the entry to this consumer, nobody holds it.
        await redis.xreadgroup("delivery", queue.consumer, {stream: ">"})
        await redis.client_pause(3000)  # its next round stalls past its deadline
        taken = await claim_within(queue, 10)  # long before the 30 s backstop sweep

    assert taken == [sent]

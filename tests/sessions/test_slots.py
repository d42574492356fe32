"""The slot stores, in memory and in a real Redis, held to the same rules (sessions/slots.py):
a session id counts once, a listing is the truth, a release is final, an unrefreshed slot lapses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import coredis
import pytest

from tests.support.caps import own_prefix
from tests.support.polling import poll_until
from voice_gateway.sessions.slots import (
    Check,
    Counts,
    MemorySlots,
    Refusal,
    Slot,
    SlotStore,
    SlotTiming,
    scopes_of,
)
from voice_gateway.sessions.slots_redis import open_redis_slots

MINUTE = SlotTiming(grace_s=60, lease_s=120)
NATE = Slot("sess_nate", scopes_of("nate", "pm-agent"))
ZOE = Slot("sess_zoe", scopes_of("zoe", ""))
ONE_PER_USER = [Check("user", "user:nate", 1)]


Opener = Callable[[SlotTiming], AbstractAsyncContextManager[SlotStore]]


@asynccontextmanager
async def memory_slots(timing: SlotTiming) -> AsyncIterator[SlotStore]:
    yield MemorySlots(timing)


@pytest.fixture(params=["memory", "redis"])
def opener(request: pytest.FixtureRequest) -> Opener:
    """Opens a store of the parameter's kind (each Redis one under a prefix of its own)."""
    if request.param == "memory":
        return memory_slots
    url: str = request.getfixturevalue("redis_url")
    return lambda timing: open_redis_slots(url, own_prefix(), timing)


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[SlotStore]:
    async with opener(MINUTE) as opened:
        yield opened


async def test_a_session_id_counts_once_in_each_of_its_scopes(store: SlotStore) -> None:
    first = await store.reserve(NATE, ONE_PER_USER)
    again = await store.reserve(NATE, ONE_PER_USER)
    await store.reserve(ZOE, ())

    assert (first, again) == (True, False)
    counts = await store.counts()
    assert counts == Counts({"gateway": 2, "user:nate": 1, "agent:pm-agent": 1, "user:zoe": 1})
    assert counts.per_agent() == {"pm-agent": 1}


async def test_a_full_scope_refuses_with_its_count(store: SlotStore) -> None:
    await store.reserve(NATE, ())
    refused = await store.reserve(Slot("sess_2", NATE.scopes), ONE_PER_USER)

    assert refused == Refusal("user", 1, 1)


@pytest.mark.parametrize(
    ("age_of_the_listing_without_it", "counted"),
    [(0, 0), (5, 1)],  # made after the listing that showed the room / before it
)
async def test_a_listing_without_a_room_drops_its_slot_only_if_made_after_one_with_it(
    store: SlotStore, age_of_the_listing_without_it: float, counted: int
) -> None:
    # Two replicas sweep at once: the later listing's reconcile may land first.
    await store.reserve(NATE, ())
    await store.reconcile([NATE], listing_age_s=0)
    await store.reconcile([], listing_age_s=age_of_the_listing_without_it)

    assert (await store.counts()).of("gateway") == counted


async def test_an_unseen_reservation_is_kept_for_the_grace(store: SlotStore) -> None:
    await store.reserve(NATE, ())
    await store.reconcile([], listing_age_s=0)

    assert (await store.counts()).of("gateway") == 1


async def test_a_listing_counts_a_live_session_no_slot_held(store: SlotStore) -> None:
    await store.reconcile([NATE], listing_age_s=0)

    assert (await store.counts()).of("user:nate") == 1


async def test_a_released_session_is_not_counted_again_from_an_older_listing(
    store: SlotStore,
) -> None:
    await store.reserve(NATE, ())
    await store.release(NATE.session_id)
    await store.reconcile([NATE], listing_age_s=1)  # listed just before the end

    assert await store.counts() == Counts({})


async def test_a_second_release_and_one_of_an_id_never_held_change_nothing(
    store: SlotStore,
) -> None:
    # Every end of a session releases its slot (sessions/closer.py), the session's second end too.
    await store.reserve(NATE, ())
    await store.reserve(ZOE, ())
    await store.release(NATE.session_id)
    await store.release(NATE.session_id)
    await store.release("sess_never_held")

    assert await store.counts() == Counts({"gateway": 1, "user:zoe": 1})


async def test_a_withdrawn_reservation_is_counted_again_if_its_room_exists(
    store: SlotStore,
) -> None:
    # A create that timed out may have made its room after all.
    await store.reserve(NATE, ())
    await store.withdraw(NATE.session_id)
    await store.reconcile([NATE], listing_age_s=0)

    assert (await store.counts()).of("gateway") == 1


async def test_a_new_reservation_under_a_released_id_counts(store: SlotStore) -> None:
    await store.reserve(NATE, ())
    await store.release(NATE.session_id)

    assert await store.reserve(NATE, ()) is True


async def test_a_slot_no_listing_refreshes_lapses_by_itself(opener: Opener) -> None:
    # A crashed replica's reservation, with no replica left to sweep.
    async with opener(SlotTiming(grace_s=0.1, lease_s=0.3)) as store:
        await store.reserve(NATE, ())

        async def lapsed() -> bool:
            return await store.counts() == Counts({})

        await poll_until(lapsed, timeout_s=5)


async def test_redis_keeps_no_key_once_every_slot_has_lapsed(redis_url: str) -> None:
    prefix = own_prefix()
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    async with open_redis_slots(redis_url, prefix, SlotTiming(0.1, 0.3)) as store:
        await store.reserve(NATE, ())
        await store.release(ZOE.session_id)

    async def emptied() -> bool:
        return not await client.keys(f"voice-gateway:admission:{{{prefix}}}:*")

    await poll_until(emptied, timeout_s=5)
    client.connection_pool.disconnect()

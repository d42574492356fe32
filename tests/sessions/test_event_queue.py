"""The in-memory event queue's limits: full means dropped (counted), never a wait; the same
event twice is one delivery, also once the first was sent (within the hour, and the last
20,000 deliveries)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.records import session_record
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions import event_queue, events
from voice_gateway.sessions.event_outbox import EventOutbox
from voice_gateway.sessions.event_queue import MemoryEventQueue


def created_event(session_id: str) -> events.SessionEvent:
    record = session_record(datetime.now(UTC), session_id=session_id)
    return events.created(record, record.room_name("foundry"))


async def test_a_full_queue_drops_the_event_and_counts_it() -> None:
    metrics = Metrics()
    queue = MemoryEventQueue(size=1)
    outbox = EventOutbox(queue, ["http://app/events"], metrics)

    await outbox.emit(created_event("sess_" + "A" * 22))
    await outbox.emit(created_event("sess_" + "B" * 22))

    assert queue.depth() == 1
    dropped = metrics.events.labels("session.created", "dropped")._value.get()
    assert dropped == 1


async def test_the_same_event_twice_is_one_delivery() -> None:
    queue = MemoryEventQueue()
    outbox = EventOutbox(queue, ["http://app/events"], Metrics())
    event = created_event("sess_" + "C" * 22)

    await outbox.emit(event)
    await outbox.emit(event)

    assert len(await queue.claim()) == 1


async def test_the_same_event_after_it_was_sent_is_not_sent_again() -> None:
    # The sweep finds a join and its event is sent; then LiveKit's webhook of it comes.
    queue = MemoryEventQueue()
    outbox = EventOutbox(queue, ["http://app/events"], Metrics())
    event = created_event("sess_" + "D" * 22)
    await outbox.emit(event)
    [sent] = await queue.claim()
    await queue.ack(sent)

    await outbox.emit(event)
    await outbox.emit(created_event("sess_" + "E" * 22))

    assert [delivery.event.session_id for delivery in await queue.claim()] == ["sess_" + "E" * 22]


async def test_what_it_remembers_is_bounded_and_an_event_past_it_is_sent_again() -> None:
    queue = MemoryEventQueue(seen_kept=2)
    outbox = EventOutbox(queue, ["http://app/events"], Metrics())
    first, *later = (created_event(f"sess_{letter * 22}") for letter in "FGH")
    for event in (first, *later):
        await outbox.emit(event)
    for delivery in await queue.claim():
        await queue.ack(delivery)

    await outbox.emit(first)  # forgotten: at least once, the receiver deduplicates on its id
    await outbox.emit(later[-1])  # remembered

    assert [delivery.event.id for delivery in await queue.claim()] == [first.id]


async def test_one_still_pending_is_not_queued_twice_though_forgotten_as_seen() -> None:
    queue = MemoryEventQueue(seen_kept=1)
    outbox = EventOutbox(queue, ["http://app/events"], Metrics())
    retrying, other = created_event("sess_" + "J" * 22), created_event("sess_" + "K" * 22)
    await outbox.emit(retrying)
    await outbox.emit(other)  # `retrying` is no longer remembered as seen, but still pending

    await outbox.emit(retrying)

    assert [delivery.event.id for delivery in await queue.claim()] == [retrying.id, other.id]
    assert queue.depth() == 2


async def test_an_hour_later_the_same_event_is_sent_again() -> None:
    now = [1000.0]
    queue = MemoryEventQueue(clock=lambda: now[0])
    outbox = EventOutbox(queue, ["http://app/events"], Metrics())
    event = created_event("sess_" + "L" * 22)
    await outbox.emit(event)
    await queue.ack((await queue.claim())[0])
    now[0] += event_queue.SEEN_FOR_S + 1

    await outbox.emit(event)

    assert [delivery.event.id for delivery in await queue.claim()] == [event.id]


async def test_one_url_listed_twice_is_one_delivery() -> None:
    queue = MemoryEventQueue()
    outbox = EventOutbox(queue, ["http://app/events", "http://app/events"], Metrics())

    await outbox.emit(created_event("sess_" + "M" * 22))

    assert len(await queue.claim()) == 1
    assert queue.depth() == 1

"""The in-memory event queue's limits: full means dropped (counted), never a wait; the same
event twice is one delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.records import session_record
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions import events
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

"""Session events' settings and the in-memory queue's limits: off without a URL, signed always,
full means dropped (counted), never a wait."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.event_receiver import EVENTS_SECRET
from tests.support.records import session_record
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions import events
from voice_gateway.sessions.event_outbox import EventOutbox
from voice_gateway.sessions.event_queue import MemoryEventQueue
from voice_gateway.settings import Settings, describe_settings_error

REQUIRED: dict[str, Any] = {
    "livekit_url": "http://lk:7880",
    "livekit_api_key": "k",
    "livekit_api_secret": "s",
}


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(**(REQUIRED | values))
    return describe_settings_error(refused.value)


def test_events_are_off_without_a_url_and_default_to_5_s_and_a_day() -> None:
    settings = Settings(**REQUIRED)

    assert not settings.events_configured
    assert (settings.events_timeout_s, settings.events_retry_for_s) == (5, 86400)


def test_a_url_without_a_secret_is_refused() -> None:
    assert "VOICE_GATEWAY_EVENTS_SECRET must be set" in refusal(events_url="http://app/events")


def test_a_secret_that_is_not_whsec_is_refused_without_echoing_it() -> None:
    problem = refusal(events_url="http://app/events", events_secret="hunter2-hunter2")

    assert "VOICE_GATEWAY_EVENTS_SECRET is invalid" in problem
    assert "hunter2" not in problem


def test_several_urls_are_comma_separated_and_must_be_http() -> None:
    settings = Settings(
        **REQUIRED, events_url="http://a/e, https://b/e", events_secret=EVENTS_SECRET
    )

    assert settings.events_url == ["http://a/e", "https://b/e"]
    assert "VOICE_GATEWAY_EVENTS_URL" in refusal(events_url="ftp://a", events_secret=EVENTS_SECRET)


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

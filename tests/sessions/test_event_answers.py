"""What the gateway makes of a receiver's answer (docs/events.md, "Delivery"), with a real
receiver over HTTP: 410 dead-letters the event at once, Retry-After is honoured within a bound,
every other 4xx is retried until the receiver takes the event."""

from __future__ import annotations

import logging

import pytest

from tests.support.event_gateway import gateway
from tests.support.event_receiver import EVENTS_SECRET, EventReceiver
from tests.support.gateway import create_session, metric, serving
from tests.support.polling import poll_until, wait_until
from voice_gateway.sessions.receiver_answers import retry_after_s
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")


async def test_a_410_dead_letters_that_event_at_once_and_says_where_it_went(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "voice_gateway.events")
    receiver = EventReceiver(script=[410])
    async with serving(receiver) as receiver_url:
        url = f"{receiver_url}/hooks?token=receivers-own-secret"
        async with gateway(standin, url) as client:
            gone = (await create_session(client)).json()
            dead = await poll_until(
                lambda: metric(client, 'voice_gateway_events_total{outcome="dead"'), timeout_s=5
            )
            later = (await create_session(client, user_id="olga")).json()
            await wait_until(lambda: receiver.types_of(later["session_id"]) == ["session.created"])
            retried = await metric(client, 'voice_gateway_events_total{outcome="retried"')

    assert dead == 1
    assert retried == 0
    assert receiver.of_session(gone["session_id"]) == []
    assert len(receiver.attempted_ids) == 2  # the gone one once, the later one once
    [line] = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert "at once" in line
    assert "HTTP 410" in line
    assert f"{receiver_url}/hooks" in line
    assert "receivers-own-secret" not in line
    assert EVENTS_SECRET not in caplog.text


async def test_a_429_is_retried_no_sooner_than_its_retry_after(standin: StandIn) -> None:
    receiver = EventReceiver(script=[429], retry_after="2")
    async with serving(receiver) as receiver_url, gateway(standin, receiver_url) as client:
        await create_session(client)
        await wait_until(lambda: len(receiver.received) == 1, timeout_s=10)

    first, second = receiver.attempted_at
    assert 2.0 <= second - first < 4.0  # the backoff alone would have retried within 0.5 s
    assert receiver.attempted_ids[0] == receiver.attempted_ids[1]


async def test_a_retry_after_longer_than_the_longest_wait_is_cut_to_it(standin: StandIn) -> None:
    receiver = EventReceiver(script=[503], retry_after="3600")
    async with (
        serving(receiver) as receiver_url,
        gateway(standin, receiver_url, events_retry_max_s=1) as client,
    ):
        await create_session(client)
        await wait_until(lambda: len(receiver.received) == 1, timeout_s=5)

    first, second = receiver.attempted_at
    assert 0.9 <= second - first < 2.0


async def test_a_retry_after_on_a_500_is_honoured_too(standin: StandIn) -> None:
    receiver = EventReceiver(script=[500], retry_after="1")
    async with serving(receiver) as receiver_url, gateway(standin, receiver_url) as client:
        await create_session(client)
        await wait_until(lambda: len(receiver.received) == 1, timeout_s=5)

    first, second = receiver.attempted_at
    assert 1.0 <= second - first < 2.5


async def test_other_4xx_are_retried_until_the_receiver_takes_the_event(standin: StandIn) -> None:
    # A receiver being deployed or misconfigured, then fixed: the event still arrives, same id.
    receiver = EventReceiver(script=[400, 401, 403, 404, 409, 422])
    async with (
        serving(receiver) as receiver_url,
        gateway(standin, receiver_url, events_retry_max_s=0.2) as client,
    ):
        session = (await create_session(client)).json()
        await wait_until(lambda: len(receiver.received) == 1, timeout_s=10)
        dead = await metric(client, 'voice_gateway_events_total{outcome="dead"')

    assert receiver.types_of(session["session_id"]) == ["session.created"]
    assert len(receiver.attempted_ids) == 7
    assert len(set(receiver.attempted_ids)) == 1
    assert dead == 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_s(header) == seconds


def test_a_retry_after_date_in_the_future_is_the_seconds_until_it() -> None:
    seconds = retry_after_s("Fri, 01 Jan 2100 00:00:00 GMT")
    assert seconds is not None
    assert seconds > 70 * 365 * 24 * 3600

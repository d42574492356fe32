"""A receiver down for 30 s, then back (issue 11, item 8): every event of every session is
delivered, under the id it was first tried with, in sequence order per session. Sessions go on
through the outage. The longest wait between attempts is set to 2 s so the test does not wait
on the default 10-minute cap's doubling; the schedule itself is the one in production."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.support.event_gateway import EVERY_STEP, gateway, go_through_every_step
from tests.support.event_receiver import EventReceiver
from tests.support.gateway import metric, serving
from tests.support.polling import wait_until
from tests.support.processes import free_port
from voice_gateway.standin import StandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("webhooks_off_afterwards")]
OUTAGE_S = 30.0


async def test_a_receiver_down_for_30_s_gets_every_event_once_back(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.05)
    port, receiver = free_port(), EventReceiver(status=503)
    async with gateway(standin, f"http://127.0.0.1:{port}", events_retry_max_s=2) as client:
        async with serving(receiver, port):  # failing, then gone
            before = await go_through_every_step(standin, client)
            await wait_until(lambda: len(receiver.attempted_ids) >= 2)
        down_at = time.monotonic()
        during = [await go_through_every_step(standin, client, f"user-{n}") for n in range(3)]
        await anyio.sleep(OUTAGE_S - (time.monotonic() - down_at))
        outage_s = time.monotonic() - down_at
        tried_before = list(receiver.attempted_ids)
        receiver.status = 204
        async with serving(receiver, port):  # back
            await wait_until(lambda: len(receiver.received) == 4 * len(EVERY_STEP), timeout_s=20)
            depth = await metric(client, "voice_gateway_event_queue_depth")

    assert outage_s >= OUTAGE_S
    delivered_ids = [event.webhook_id for event in receiver.received]
    assert len(set(delivered_ids)) == len(delivered_ids)  # each once
    assert set(tried_before) <= set(delivered_ids)  # a retry keeps its id
    for session in [before, *during]:
        events = receiver.of_session(session["session_id"])
        assert [event.type for event in events] == EVERY_STEP
        sequences = [event.data["sequence"] for event in events]
        assert sequences == sorted(sequences)
    assert depth == 0

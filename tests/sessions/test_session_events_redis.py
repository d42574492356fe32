"""Session events when Redis is the queue and Redis fails (real redis-servers): an action whose
event Redis does not take is not answered as if it were: a create gets 503 `events_unavailable`
and its room goes, a LiveKit webhook gets 503 (LiveKit retries it); and a Redis restarted
mid-stream, with its append-only file, loses nothing: what was queued, what LiveKit retried and
what ended during the outage all reach the receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.event_receiver import EVENTS_SECRET, EventReceiver
from tests.support.gateway import create_session, make_settings, serving, serving_gateway
from tests.support.polling import wait_until
from tests.support.processes import free_port
from tests.support.redis_server import redis_server
from tests.support.webhooks import WEBHOOK, signed
from voice_gateway.standin import StandIn
from voice_gateway.standin.webhooks import WebhookDelivery

pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")
NO_AGENT_WATCH = {"agent_join_timeout_s": 0}  # no agent in these sessions: none is awaited


@asynccontextmanager
async def gateway_on(
    standin: StandIn, redis_url: str, receiver_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    values = {
        "redis_url": redis_url,
        "room_prefix": f"evr{free_port()}",  # a queue of its own in a shared Redis
        "events_url": [receiver_url],
        "events_secret": EVENTS_SECRET,
        "events_timeout_s": 1,
        "events_lease_s": 4,
        "shutdown_grace_s": 2,
        "shutdown_delay_s": 0,
    } | NO_AGENT_WATCH
    async with serving_gateway(make_settings(standin, **(values | overrides))) as url:
        standin.set_webhook_urls([f"{url}{WEBHOOK}"])
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


def to_this_gateway(standin: StandIn) -> list[WebhookDelivery]:
    """The stand-in's webhook deliveries to the gateway of this test (it keeps earlier ones)."""
    url = standin.state.webhooks.urls[0]
    return [d for d in standin.webhook_deliveries() if d.url == url]


def statuses_of(standin: StandIn, event: str) -> list[int | None]:
    return [d.status for d in to_this_gateway(standin) if d.event == event]


async def test_a_create_whose_event_redis_did_not_take_is_503_and_its_room_goes(
    standin: StandIn,
) -> None:
    down, prefix = f"redis://127.0.0.1:{free_port()}/0", "evrefused"
    receiver_url = f"http://127.0.0.1:{free_port()}"
    async with gateway_on(standin, down, receiver_url, room_prefix=prefix) as client:
        answer = await create_session(client)
        session_room = f"{prefix}_nate_pm-agent_"
        await wait_until(lambda: not any(name.startswith(session_room) for name in standin.rooms))

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "events_unavailable"
    assert answer.headers["retry-after"] == "1"


async def test_a_livekit_webhook_whose_event_redis_did_not_take_is_answered_503(
    standin: StandIn,
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with gateway_on(standin, down, f"http://127.0.0.1:{free_port()}") as client:
        # A token session needs no event to start: its room appears at the user's join.
        token = await client.post("/api/voice/token", json={"participant_identity": "nate"})
        standin.join(token.json()["participant_token"])
        await wait_until(lambda: statuses_of(standin, "participant_joined") != [])

    assert statuses_of(standin, "room_started") == [200]  # no event of its own
    assert statuses_of(standin, "participant_joined") == [503]


async def retry_as_livekit_would(client: httpx.AsyncClient, standin: StandIn) -> list[int]:
    """Every webhook the gateway answered 5xx, sent again (LiveKit retries up to 4 times)."""
    refused = [d for d in to_this_gateway(standin) if d.status and d.status >= 500]
    return [
        (await client.post(WEBHOOK, content=d.body, headers=signed(d.body))).status_code
        for d in refused
    ]


async def test_a_redis_restarted_mid_stream_loses_no_event(
    standin: StandIn, tmp_path: Path
) -> None:
    receiver = EventReceiver(hold=anyio.Event())
    with redis_server(tmp_path, persistent=True) as redis:
        async with (
            serving(receiver) as receiver_url,
            gateway_on(standin, redis.url, receiver_url) as client,
        ):
            sessions = [(await create_session(client, user_id=f"u{n}")).json() for n in range(3)]
            await anyio.sleep(0.5)  # claimed, and held at the receiver
            redis.stop()
            outage = await during_the_outage(client, standin, sessions)
            redis.start()  # from its append-only file
            retried = await retry_as_livekit_would(client, standin)
            assert receiver.hold is not None
            receiver.hold.set()
            expected = expected_after_outage(sessions)
            await wait_until(lambda: delivered(receiver, sessions) == expected, timeout_s=30)

    assert outage == {"joined": [503, 503], "create": 503, "delete": 204}
    assert retried == [200, 200]
    assert {e.data["session_id"] for e in receiver.received} == set(expected)  # none of the 503
    assert receiver.unverified == 0


async def during_the_outage(
    client: httpx.AsyncClient, standin: StandIn, sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    """Two users join (webhooks refused), a create is refused, a delete is done."""
    for session in sessions[:2]:
        standin.join(session["token"])
    await wait_until(lambda: len(statuses_of(standin, "participant_joined")) == 2)
    create = (await create_session(client, user_id="refused")).status_code
    delete = await client.delete(f"/api/voice/session/{sessions[2]['room_name']}")
    return {
        "joined": statuses_of(standin, "participant_joined"),
        "create": create,
        "delete": delete.status_code,
    }


def expected_after_outage(sessions: list[dict[str, Any]]) -> dict[str, list[str]]:
    joined = ["session.created", "session.user_joined"]
    ended = ["session.created", "session.ended"]
    ids = [s["session_id"] for s in sessions]
    return {ids[0]: joined, ids[1]: joined, ids[2]: ended}


def delivered(receiver: EventReceiver, sessions: list[dict[str, Any]]) -> dict[str, list[str]]:
    ids = [s["session_id"] for s in sessions]
    return {sid: [e.type for e in receiver.first_of_session(sid)] for sid in ids}

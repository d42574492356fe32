"""Session events across replicas: two real `python -m voice_gateway serve` processes on one real
redis-server, LiveKit's webhooks reaching both, a real receiver verifying every signature with the
`standardwebhooks` library. One replica SIGKILLed with events in flight: every event still
arrives (duplicates allowed: at least once), each session's in `sequence` order; and the same
order under a receiver that fails at random."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import coredis
import httpx
import pytest
from coredis.response.types import StreamPending

from tests.support.event_receiver import EVENTS_SECRET, EventReceiver
from tests.support.gateway import SESSION_BODY, serving
from tests.support.polling import wait_until
from tests.support.processes import AUTH, Gateway
from tests.support.processes import serving as serving_process
from tests.support.webhooks import WEBHOOK
from voice_gateway.sessions.event_queue_redis import GROUP, EventKeys
from voice_gateway.standin import StandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("webhooks_off_afterwards")]
EVERY_STEP = ["session.created", "session.user_joined", "session.user_left", "session.ended"]
LEASE_S = 4  # how long a SIGKILLed replica's partitions stay its own (30 s by default)


def replica_settings(redis_url: str, receiver_url: str, prefix: str) -> dict[str, str]:
    return {
        "VOICE_GATEWAY_REDIS_URL": redis_url,
        "VOICE_GATEWAY_ROOM_PREFIX": prefix,
        "VOICE_GATEWAY_EVENTS_URL": receiver_url,
        "VOICE_GATEWAY_EVENTS_SECRET": EVENTS_SECRET,
        "VOICE_GATEWAY_EVENTS_TIMEOUT_S": "1",
        "VOICE_GATEWAY_EVENTS_LEASE_S": str(LEASE_S),
        "VOICE_GATEWAY_AGENT_JOIN_TIMEOUT_S": "0",  # no agent in these sessions
        "VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0",
        "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "2",
    }


@contextmanager
def two_replicas(
    tmp_path: Path, standin: StandIn, settings: dict[str, str]
) -> Iterator[list[Gateway]]:
    with ExitStack() as stack:
        replicas = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(
                stack.enter_context(serving_process(tmp_path / name, standin, **settings))
            )
        standin.set_webhook_urls([f"{r.base}{WEBHOOK}" for r in replicas])
        yield replicas
        for replica in replicas:
            if replica.process.poll() is None:
                replica.stop()  # SIGINT: it writes its coverage data


@asynccontextmanager
async def replicas_and_receiver(
    tmp_path: Path, standin: StandIn, redis_url: str, receiver: EventReceiver
) -> AsyncIterator[tuple[list[Gateway], str]]:
    prefix = f"rep{uuid.uuid4().hex[:8]}"
    async with serving(receiver) as receiver_url:
        settings = replica_settings(redis_url, receiver_url, prefix)
        with ExitStack() as stack:
            # Started in a thread: starting waits synchronously, and the receiver serves here.
            replicas = await anyio.to_thread.run_sync(
                stack.enter_context, two_replicas(tmp_path, standin, settings)
            )
            try:
                yield replicas, prefix
            except Exception as failure:
                raise AssertionError(what_the_replicas_said(replicas)) from failure
            await anyio.to_thread.run_sync(stack.close)


def what_the_replicas_said(replicas: list[Gateway]) -> str:
    """For a failure: each replica's exit status and its last lines but the access log."""
    said = []
    for replica in replicas:
        lines = [line for line in replica.log_path.read_text().splitlines() if "access" not in line]
        said.append(f"{replica.base} exit {replica.process.poll()}:\n" + "\n".join(lines[-15:]))
    return "\n".join(said)


async def live_a_session(base: str, standin: StandIn, user: str) -> str:
    """Created through `base`, joined and left by its user, then ended: its session id."""
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:
        created = await client.post("/api/voice/session", json=SESSION_BODY | {"user_id": user})
        session = created.json()
        standin.join(session["token"])
        await anyio.sleep(0.2)  # each webhook heard before the next step
        standin.remove_participant(session["room_name"], user)
        await anyio.sleep(0.2)
        ended = await client.delete(f"/api/voice/session/{session['room_name']}")
    assert (created.status_code, ended.status_code) == (201, 204)
    return str(session["session_id"])


def every_step_arrived(receiver: EventReceiver, sessions: list[str]) -> bool:
    return all(len(receiver.first_of_session(sid)) == len(EVERY_STEP) for sid in sessions)


def assert_each_in_order(receiver: EventReceiver, sessions: list[str]) -> None:
    for sid in sessions:
        first = receiver.first_of_session(sid)
        assert [e.type for e in first] == EVERY_STEP, sid
        sequences = [e.data["sequence"] for e in first]
        assert sequences == sorted(sequences), sid


async def pending_by_consumer(redis_url: str, prefix: str) -> dict[str, int]:
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    held: dict[str, int] = {}
    try:
        for stream in EventKeys(prefix).streams:
            summary = await client.xpending(stream, GROUP)
            assert isinstance(summary, StreamPending)
            for consumer, count in summary.consumers.items():
                held[str(consumer)] = held.get(str(consumer), 0) + count
    finally:
        client.connection_pool.disconnect()
    return held


async def test_a_replica_sigkilled_with_events_in_flight_loses_none_and_keeps_order(
    standin: StandIn, redis_url: str, tmp_path: Path
) -> None:
    receiver = EventReceiver(hold=anyio.Event())  # every delivery in flight until released
    async with replicas_and_receiver(tmp_path, standin, redis_url, receiver) as (replicas, prefix):
        a, b = replicas
        await anyio.sleep(LEASE_S / 2)  # the second replica has its share of the partitions
        before = [
            await live_a_session(r.base, standin, f"u{n}") for n, r in enumerate(replicas * 6)
        ]
        await anyio.sleep(1.0)  # claimed by the partitions' owners, sent, held at the receiver
        held = await pending_by_consumer(redis_url, prefix)
        a.process.kill()  # SIGKILL: no drain, no goodbye
        a.process.wait(timeout=10)
        after = [await live_a_session(b.base, standin, f"v{n}") for n in range(4)]
        assert receiver.hold is not None
        receiver.hold.set()
        sessions = before + after
        await wait_until(lambda: every_step_arrived(receiver, sessions), timeout_s=60)
        taken = [line["message"] for line in b.log_lines() if "event partitions" in line["message"]]

    # The killed replica held events (its consumer name has its pid): those had to be taken over.
    assert sum(n for consumer, n in held.items() if f"-{a.process.pid}-" in consumer) > 0
    assert taken[-1].endswith(": 0-15")  # the survivor took the killed replica's partitions over
    assert_each_in_order(receiver, sessions)
    assert receiver.unverified == 0


async def test_two_replicas_keep_each_sessions_order_under_a_receiver_failing_at_random(
    standin: StandIn, redis_url: str, tmp_path: Path
) -> None:
    receiver = EventReceiver(flaky=0.3)
    async with replicas_and_receiver(tmp_path, standin, redis_url, receiver) as (replicas, _):
        await anyio.sleep(LEASE_S / 2)
        sessions = [
            await live_a_session(r.base, standin, f"w{n}") for n, r in enumerate(replicas * 5)
        ]
        await wait_until(lambda: every_step_arrived(receiver, sessions), timeout_s=60)

    assert len(receiver.attempted_ids) > len(receiver.received)  # it did fail, and was retried
    assert_each_in_order(receiver, sessions)
    assert receiver.unverified == 0

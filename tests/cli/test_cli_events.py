"""`voice-gateway events dead` and `events resend`, run as an operator runs them (a real process)
against a real redis-server holding dead letters the Redis event queue made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import coredis
import pytest

from tests.support.cli import clean_env, run_cli
from tests.support.keys import API_KEY, API_SECRET
from tests.support.records import session_record
from voice_gateway.sessions import events
from voice_gateway.sessions.event_dead_letters import DeadLetters
from voice_gateway.sessions.event_queue import Delivery
from voice_gateway.sessions.event_queue_redis import EventKeys, open_redis_event_queue

pytestmark = pytest.mark.slow
RECEIVER = "https://app.example/events?token=receivers-own-secret"
FAST = {"lease_s": 1.5, "safety_s": 0.5, "block_s": 0.1}


def env_for(redis_url: str | None, prefix: str) -> dict[str, str]:
    settings = {
        "LIVEKIT_URL": "http://127.0.0.1:1",
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "VOICE_GATEWAY_ROOM_PREFIX": prefix,
    }
    return clean_env(**settings, **({"VOICE_GATEWAY_REDIS_URL": redis_url} if redis_url else {}))


async def dead_letters(redis_url: str, prefix: str, count: int) -> list[Delivery]:
    """`count` deliveries dead-lettered by the queue, as the sender does after its retries."""
    made = []
    async with open_redis_event_queue(redis_url, prefix, **FAST) as queue:
        for n in range(count):
            record = session_record(datetime.now(UTC), session_id=f"sess_{n:022d}")
            made.append(Delivery(events.created(record, record.room_name(prefix)), RECEIVER))
        await queue.append(made)
        claimed: list[Delivery] = []
        while len(claimed) < count:
            claimed += await queue.claim()
        for delivery in claimed:
            await queue.dead_letter(delivery, "HTTP 500", 12)
    return made


async def queued(redis_url: str, prefix: str) -> int:
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sum([await client.xlen(stream) for stream in EventKeys(prefix).streams])
    finally:
        client.connection_pool.disconnect()


async def dead_now(redis_url: str, prefix: str) -> list[str]:
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [letter.id async for letter in DeadLetters(client, prefix).all()]
    finally:
        client.connection_pool.disconnect()


@pytest.fixture
def prefix() -> str:
    return f"cli{uuid.uuid4().hex[:10]}"


async def test_events_dead_lists_each_dead_event_with_its_error_and_attempts(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    [made] = await dead_letters(redis_url, prefix, 1)
    result = await anyio.to_thread.run_sync(
        lambda: run_cli("events", "dead", env=env_for(redis_url, prefix), cwd=tmp_path)
    )

    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header.split("\t") == ["ID", "EVENT", "TYPE", "SESSION", "RECEIVER", "ATTEMPTS", "ERROR"]
    fields = row.split("\t")
    assert fields[1:] == [
        made.event.id,
        "session.created",
        made.event.session_id,
        "https://app.example/events",  # the receiver's own token in its query is not shown
        "12",
        "HTTP 500",
    ]
    assert "receivers-own-secret" not in result.stdout


async def test_events_resend_queues_the_named_dead_events_again(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    made = await dead_letters(redis_url, prefix, 3)
    env = env_for(redis_url, prefix)
    by_event_id = made[0].event.id
    [_, second, _] = await dead_now(redis_url, prefix)
    result = await anyio.to_thread.run_sync(
        lambda: run_cli("events", "resend", by_event_id, second, env=env, cwd=tmp_path)
    )

    assert result.returncode == 0, result.stderr
    assert "re-queued 2 dead event deliveries" in result.stdout
    assert await queued(redis_url, prefix) == 2
    assert len(await dead_now(redis_url, prefix)) == 1


async def test_events_resend_all_queues_every_dead_event_and_names_an_unknown_one(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    await dead_letters(redis_url, prefix, 2)
    env = env_for(redis_url, prefix)
    every = await anyio.to_thread.run_sync(
        lambda: run_cli("events", "resend", "--all", env=env, cwd=tmp_path)
    )
    unknown = await anyio.to_thread.run_sync(
        lambda: run_cli("events", "resend", "evt_nosuch", env=env, cwd=tmp_path)
    )

    assert every.returncode == 0
    assert "re-queued 2 dead event deliveries" in every.stdout
    assert await dead_now(redis_url, prefix) == []
    assert unknown.returncode == 1
    assert "no dead event evt_nosuch" in unknown.stderr


def test_events_commands_without_redis_say_why_in_one_line(tmp_path: Path) -> None:
    result = run_cli("events", "dead", env=env_for(None, "foundry"), cwd=tmp_path)

    assert result.returncode == 2
    assert "VOICE_GATEWAY_REDIS_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_events_resend_needs_ids_or_all(tmp_path: Path) -> None:
    result = run_cli("events", "resend", env=env_for(None, "foundry"), cwd=tmp_path)

    assert result.returncode == 2
    assert "ID" in result.stderr

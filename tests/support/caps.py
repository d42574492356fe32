"""Session caps as a test drives them: a room prefix of the test's own (the stand-in outlives
each test, and the sweep counts every live session room of the prefix), concurrent creates, and
the counts `/api/voice/usage` reports."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
import httpx

from tests.support.gateway import SESSION_BODY, metric
from tests.support.polling import poll_until

USAGE = "/api/voice/usage"
SWEEPS = 'voice_gateway_reaper_sweeps_total{outcome="ok"}'


def own_prefix() -> str:
    """A room prefix no other test's rooms carry."""
    return f"cap-{uuid.uuid4().hex[:12]}"


async def concurrent_creates(
    replicas: Sequence[httpx.AsyncClient], count: int, **fields: Any
) -> Counter[int]:
    """`count` session creates at once, spread over `replicas` in turn: the statuses they got."""
    statuses: Counter[int] = Counter()

    async def create(client: httpx.AsyncClient) -> None:
        response = await client.post("/api/voice/session", json=SESSION_BODY | fields)
        statuses[response.status_code] += 1

    async with anyio.create_task_group() as group:
        for number in range(count):
            group.start_soon(create, replicas[number % len(replicas)])
    return statuses


async def gateway_count(client: httpx.AsyncClient, **headers: str) -> int:
    count: int = (await client.get(USAGE, headers=headers)).json()["gateway"]["count"]
    return count


async def wait_for_gateway_count(client: httpx.AsyncClient, count: int) -> None:
    """Until the gateway counts `count` live sessions (a webhook or a sweep changes it)."""

    async def reached() -> bool:
        return await gateway_count(client) == count

    await poll_until(reached, timeout_s=10)


async def after_sweeps(client: httpx.AsyncClient, count: int) -> None:
    """Once the gateway's reaper has finished `count` more passes."""
    start = await metric(client, SWEEPS)

    async def swept() -> bool:
        return await metric(client, SWEEPS) >= start + count

    await poll_until(swept, timeout_s=10)

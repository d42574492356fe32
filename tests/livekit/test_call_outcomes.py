"""A LiveKit call failing in a way calls.py does not foresee (a bug, by its own account) costs
the client a problem+json 500 with its request id, never a traceback, and is counted as outcome
`error`, never `ok`, in the metrics."""

from __future__ import annotations

import asyncio

import httpx
from livekit import api

from tests.livekit.test_twirp_pool import livekit_like
from tests.support.gateway import create_session, make_settings_for, metric, serving_gateway

# Deeper than the JSON decoder's recursion allows: json.loads raises RecursionError, not the
# ValueError calls.py reads a non-JSON error body by (what a broken proxy could send).
NESTING = 100_000
CALLS = 'voice_gateway_livekit_call_seconds_count{method="CreateRoom",outcome='


async def nested_error_body(
    writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
) -> bool:
    body = b"[" * NESTING
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    return True


async def test_an_unforeseen_failure_of_a_call_is_a_problem_500_counted_as_error() -> None:
    async with (
        livekit_like(nested_error_body) as (livekit_url, seen),
        serving_gateway(make_settings_for(livekit_url)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response = await create_session(client)
        errors = await metric(client, CALLS + '"error"}')
        oks = await metric(client, CALLS + '"ok"}')

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert "RecursionError" not in response.text
    assert (errors, oks) == (1, 0)
    assert seen.creates() == [1]

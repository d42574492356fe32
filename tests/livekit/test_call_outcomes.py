"""A LiveKit answer past what a decoder takes is still LiveKit's error (502), and a call failing
in a way calls.py does not foresee (a bug, by its own account) costs the client a problem+json 500
with its request id, never a traceback, and is counted as outcome `error`, never `ok`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from livekit import api

from tests.livekit.test_twirp_pool import livekit_like
from tests.support.gateway import create_session, make_settings_for, metric, serving_gateway
from voice_gateway.livekit import calls as calls_module
from voice_gateway.livekit.twirp_pool import TwirpAnswer

# Deeper than the JSON decoder's recursion allows: json.loads raises RecursionError, not the
# ValueError a non-JSON error body raises (what a broken proxy could send).
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


async def create_and_count(*outcomes: str) -> tuple[httpx.Response, list[float], list[int]]:
    """One session asked of a gateway whose LiveKit answers `nested_error_body`: the answer,
    CreateRoom's calls counted by each outcome, and the calls LiveKit saw."""
    async with (
        livekit_like(nested_error_body) as (livekit_url, seen),
        serving_gateway(make_settings_for(livekit_url)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response = await create_session(client)
        counts = [await metric(client, CALLS + f'"{outcome}"}}') for outcome in outcomes]
    return response, counts, seen.creates()


async def test_an_error_body_nested_too_deep_is_a_502_not_a_500() -> None:
    response, [errors], creates = await create_and_count("livekit_error")

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_error"
    assert "RecursionError" not in response.text
    assert errors == 1
    assert creates == [1]


def a_bug(reply: TwirpAnswer, answer: type[api.Room]) -> api.Room:
    raise KeyError("a bug in reading LiveKit's answer")


async def test_an_unforeseen_failure_of_a_call_is_a_problem_500_counted_as_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bug injected where LiveKit's answer is read: no LiveKit answer known makes one.
    monkeypatch.setattr(calls_module, "_read", a_bug)
    response, [errors, oks], creates = await create_and_count("error", "ok")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert "KeyError" not in response.text
    assert (errors, oks) == (1, 0)
    assert creates == [1]

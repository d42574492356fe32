"""A dead, slow or failing LiveKit costs a clear 502/503/504 within the deadline, never a hang."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from tests.support.gateway import create_session, make_settings, running_gateway
from tests.support.polling import wait_until
from voice_gateway.livekit.join_tokens import JoinGrant, TokenSigner
from voice_gateway.standin import StandIn


async def test_unreachable_livekit_is_a_503(client: httpx.AsyncClient, standin: StandIn) -> None:
    standin.refuse_connections()

    response = await create_session(client)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "livekit_unavailable"


async def test_hanging_livekit_is_a_504_within_the_deadline(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, livekit_timeout_s=0.5)) as client:
        standin.hang()
        started = time.monotonic()
        response = await create_session(client)
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["code"] == "livekit_timeout"
    assert elapsed < 0.5 + 0.5


async def test_livekit_answering_5xx_is_a_502(client: httpx.AsyncClient, standin: StandIn) -> None:
    standin.fail_next(status=500, code="internal", msg="boom")

    response = await create_session(client)

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_error"


async def test_livekit_errors_do_not_leak_livekit_internals(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.fail_next(status=503, code="unavailable", msg="node secret-node-7 overloaded")

    response = await create_session(client)

    assert response.status_code == 503  # LiveKit shedding load: the client may retry
    assert response.headers["retry-after"] == "1"
    assert "secret-node-7" not in response.text


async def test_rejected_credentials_are_a_502(standin: StandIn) -> None:
    settings = make_settings(standin, livekit_api_secret="a-different-secret-of-32-characters!")
    async with running_gateway(settings) as client:
        response = await create_session(client)

    assert response.status_code == 502
    assert "API key or secret" in response.json()["detail"]


async def test_gateway_recovers_when_livekit_comes_back(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.refuse_connections()
    assert (await create_session(client)).status_code == 503

    standin.accept_connections()

    assert (await create_session(client)).status_code == 201


async def test_gateway_recovers_after_a_hang(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, livekit_timeout_s=0.3)) as client:
        standin.hang()
        assert (await create_session(client)).status_code == 504
        standin.clear_faults()
        assert (await create_session(client)).status_code == 201


async def test_reading_a_session_while_livekit_is_down_is_a_503(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]
    standin.refuse_connections()

    assert (await client.get(f"/api/voice/session/{room_name}")).status_code == 503
    assert (await client.delete(f"/api/voice/session/{room_name}")).status_code == 503


async def test_a_room_created_past_the_deadline_is_deleted_again(standin: StandIn) -> None:
    # LiveKit applies CreateRoom but its answer comes after our deadline: no orphan may remain.
    async with running_gateway(make_settings(standin, livekit_timeout_s=0.3)) as client:
        standin.set_latency(0.6, after=True)
        response = await create_session(client, user_id="orphan-check")
        standin.clear_faults()
        assert response.status_code == 504
        await wait_until(lambda: not _rooms_of(standin, "orphan-check"), timeout_s=3)


async def test_a_clean_up_livekit_refused_is_tried_again_once_it_answers(standin: StandIn) -> None:
    # CreateRoom applied, its answer late; then LiveKit down for a while: the room must still go.
    async with running_gateway(make_settings(standin, livekit_timeout_s=0.3)) as client:
        standin.set_latency(0.6, after=True)
        response = await create_session(client, user_id="orphan-retry")
        standin.clear_faults()
        standin.refuse_connections()
        await anyio.sleep(1)  # the first tries are refused
        standin.accept_connections()
        assert response.status_code == 504
        await wait_until(lambda: not _rooms_of(standin, "orphan-retry"), timeout_s=5)


def _rooms_of(standin: StandIn, user_id: str) -> list[str]:
    return [name for name in standin.rooms if f"_{user_id}_" in name]


async def test_concurrent_sessions_overlap_while_livekit_is_slow(standin: StandIn) -> None:
    standin.set_latency(0.2)
    statuses: list[int] = []
    started = time.monotonic()

    async def one_session(client: httpx.AsyncClient, user: int) -> None:
        response = await create_session(client, user_id=f"user{user}")
        statuses.append(response.status_code)

    # A deadline far from the latency: on a loaded machine a call may wait past 1 s, and this
    # test is about overlap, not speed (that is bench/'s slow-livekit scenario).
    async with (
        running_gateway(make_settings(standin, livekit_timeout_s=10)) as client,
        anyio.create_task_group() as group,
    ):
        for user in range(200):
            group.start_soon(one_session, client, user)
    elapsed = time.monotonic() - started

    assert statuses == [201] * 200
    # Serially this is 200 x 0.2 s = 40 s: anything near a few seconds is overlap.
    assert elapsed < 20, elapsed


async def test_healthz_stays_prompt_while_sessions_wait_on_livekit(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.set_latency(0.5)
    health_times: list[float] = []

    async def probe_health() -> None:
        await anyio.sleep(0.1)
        started = time.monotonic()
        assert (await client.get("/healthz")).status_code == 200
        health_times.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(create_session, client)
        group.start_soon(probe_health)

    assert len(health_times) == 1
    assert health_times[0] < 0.25, health_times


async def test_a_room_whose_token_could_not_be_signed_is_deleted_again(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token is signed while CreateRoom is out: should the signing fail, the room LiveKit
    # made must not stay behind with the agent dispatched into it.
    def failing_signature(signer: TokenSigner, grant: JoinGrant) -> str:
        raise RuntimeError("signing failed")

    monkeypatch.setattr(TokenSigner, "_sign_blocking", failing_signature)
    created_before = standin.requests_count("CreateRoom")
    async with running_gateway(make_settings(standin)) as client:
        with pytest.raises(RuntimeError, match="signing failed"):  # a 500 over HTTP
            await create_session(client, user_id="unsigned")
        await wait_until(lambda: not _rooms_of(standin, "unsigned"), timeout_s=5)
    assert standin.requests_count("CreateRoom") == created_before + 1  # made, then deleted

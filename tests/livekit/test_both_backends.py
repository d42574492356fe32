"""What the gateway does to LiveKit, on the stand-in and on the real `livekit-server` alike:
create, read and end a session; leave foreign rooms alone; report rejected credentials; replay an
Idempotency-Key; reap an expired session; verify LiveKit's own signed webhooks; hold a session cap
and free its slot when the room goes."""

from __future__ import annotations

import logging

import anyio
import httpx
import pytest

from tests.support.caps import after_sweeps, own_prefix, wait_for_gateway_count
from tests.support.gateway import create_session, metric, running_gateway, serving_gateway
from tests.support.livekit_backend import Backend
from tests.support.problems import assert_problem

pytestmark = pytest.mark.slow
ONE_SECOND = 1 / 3600
REVIVED_BY_SWEEP = 'voice_gateway_revived_rooms_deleted_total{found_by="sweep"}'


async def test_a_session_is_created_read_and_ended(backend: Backend) -> None:
    async with running_gateway(backend.settings()) as client:
        created = (await create_session(client)).json()
        room_name = created["room_name"]
        rooms = await backend.rooms()
        read = await client.get(f"/api/voice/session/{room_name}")
        ended = await client.delete(f"/api/voice/session/{room_name}")
        after = await client.get(f"/api/voice/session/{room_name}")

    assert room_name in rooms
    assert read.status_code == 200
    assert read.json()["session_id"] == created["session_id"]
    assert read.json()["room_sid"] == rooms[room_name].sid
    assert ended.status_code == 204
    assert_problem(after, 404, "session_not_found")
    assert room_name not in await backend.rooms()


async def test_a_room_that_is_not_a_session_is_never_read_or_deleted(backend: Backend) -> None:
    await backend.create_room("foundry_not_ours", metadata="{}")
    async with running_gateway(backend.settings()) as client:
        read = await client.get("/api/voice/session/foundry_not_ours")
        ended = await client.delete("/api/voice/session/foundry_not_ours")

    assert_problem(read, 404, "session_not_found")
    assert_problem(ended, 404, "session_not_found")
    assert "foundry_not_ours" in await backend.rooms()


async def test_rejected_credentials_are_a_502_and_not_ready(backend: Backend) -> None:
    wrong = backend.settings(livekit_api_secret="another-secret-long-enough-0123456789abcdef")
    rooms_before = set(await backend.rooms())
    async with running_gateway(wrong) as client:
        created = await create_session(client)
        ready = await client.get("/readyz")

    assert "API key or secret" in assert_problem(created, 502, "livekit_error")["detail"]
    assert ready.status_code == 503
    assert set(await backend.rooms()) == rooms_before


async def test_an_idempotency_key_replayed_answers_the_same_session(backend: Backend) -> None:
    headers = {"Idempotency-Key": "order-1"}
    async with running_gateway(backend.settings()) as client:
        first = await client.post("/api/voice/session", json=_body(), headers=headers)
        again = await client.post("/api/voice/session", json=_body(), headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["room_name"] == first.json()["room_name"]
    assert again.json()["session_id"] == first.json()["session_id"]


async def test_the_reaper_ends_an_expired_session(backend: Backend) -> None:
    async with running_gateway(backend.settings(reaper_interval_s=0.05)) as client:
        room_name = (await create_session(client, session_duration_hours=ONE_SECOND)).json()[
            "room_name"
        ]
        with anyio.fail_after(10):
            while room_name in await backend.rooms():  # noqa: ASYNC110  # another process
                await anyio.sleep(0.1)


async def test_the_backends_signed_webhooks_are_verified(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    settings = backend.settings()
    with caplog.at_level(logging.INFO, logger="voice_gateway.webhooks"):
        async with (
            serving_gateway(settings, backend.gateway_port) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            session = (await create_session(client)).json()
            await client.delete(f"/api/voice/session/{session['room_name']}")
            with anyio.fail_after(10):  # LiveKit sends when it will
                while not _webhooks(caplog, "room_finished", session["session_id"]):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            rejected = await metric(client, "voice_gateway_webhooks_rejected_total")

    # This session's only: the real server still holds earlier tests' rooms, whose webhooks
    # reach whichever gateway listens now.
    started = _webhooks(caplog, "room_started", session["session_id"])
    ended = _webhooks(caplog, "room_finished", session["session_id"])
    assert (len(started), len(ended)) == (2, 1)  # its room, then its end mark (endings.py)
    assert rejected == 0


def _webhooks(caplog: pytest.LogCaptureFixture, event: str, session_id: str) -> list[str]:
    """The gateway's lines for the `event` webhooks of this session's rooms (its own and its end
    mark, whose names carry the session id)."""
    lines = [r.getMessage() for r in caplog.records if r.name == "voice_gateway.webhooks"]
    return [
        line
        for line in lines
        if line.startswith(f"LiveKit webhook {event}:") and session_id in line
    ]


def _body() -> dict[str, object]:
    return {"user_id": "nate", "agent_id": "pm-agent", "session_duration_hours": 1}


async def test_a_room_revived_after_delete_is_deleted_on_its_webhook(backend: Backend) -> None:
    revived = 'voice_gateway_revived_rooms_deleted_total{found_by="webhook"}'
    async with (
        serving_gateway(backend.settings(), backend.gateway_port) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        room_name = (await _ended_and_revived(client, backend))["room_name"]
        await backend.wait_until_gone(room_name)
        deleted_again = await metric(client, revived)

    assert deleted_again == 1


async def test_the_sweep_deletes_a_revived_room_whose_webhook_was_lost(backend: Backend) -> None:
    # In process: LiveKit's webhooks reach no one.
    async with running_gateway(backend.settings(reaper_interval_s=0.1)) as client:
        created = await _ended_and_revived(client, backend)
        await backend.wait_until_gone(created["room_name"])
        deleted_again = await metric(client, REVIVED_BY_SWEEP)

    assert deleted_again == 1
    # The end mark stays, for as long as a token of the session could still join.
    assert f"foundry_ended_{created['session_id']}" in await backend.rooms()


async def _ended_and_revived(client: httpx.AsyncClient, backend: Backend) -> dict[str, str]:
    created: dict[str, str] = (await create_session(client)).json()
    await client.delete(f"/api/voice/session/{created['room_name']}")
    # What a join with the session's old token does (a retried join: with no metadata).
    await backend.create_room(created["room_name"], metadata="")
    return created


async def test_a_token_endpoint_room_exists_only_once_someone_joins(backend: Backend) -> None:
    # The join itself needs WebRTC on the real server: tests/e2e joins with this token.
    async with running_gateway(backend.settings()) as client:
        issued = await client.post("/api/voice/token", json={"participant_identity": "nate"})
        room_name = issued.json()["room_name"]
        read = await client.get(f"/api/voice/session/{room_name}")

    assert issued.status_code == 201
    assert room_name not in await backend.rooms()
    assert_problem(read, 404, "session_not_found")


async def test_a_per_user_cap_refuses_a_session_until_one_ends(backend: Backend) -> None:
    settings = backend.settings(room_prefix=own_prefix(), max_sessions_per_user=1)
    async with running_gateway(settings) as client:
        room_name = (await create_session(client)).json()["room_name"]
        refused = await create_session(client)
        await client.delete(f"/api/voice/session/{room_name}")
        admitted = await create_session(client)
        await client.delete(f"/api/voice/session/{admitted.json()['room_name']}")

    assert assert_problem(refused, 429, "concurrency_limit")["cap"] == "user"
    assert admitted.status_code == 201


async def test_the_sweep_frees_the_slot_of_a_session_no_webhook_said_ended(
    backend: Backend,
) -> None:
    # In process: LiveKit's webhooks reach no one, so only the room list tells the end.
    settings = backend.settings(
        room_prefix=own_prefix(), max_sessions_per_user=1, reaper_interval_s=0.1
    )
    async with running_gateway(settings) as client:
        room_name = (await create_session(client)).json()["room_name"]
        await after_sweeps(client, 2)  # one has listed the room since (unseen, it has the grace)
        await backend.delete_room(room_name)
        await wait_for_gateway_count(client, 0)

"""An ended session stays ended (sessions/endings.py): which rooms count as a session's, what an
end mark says, and a revived room found by its webhook or by the sweep. The real server's side
of it (a real client rejoining with an old token) is tests/e2e/test_final_end.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import httpx
import pytest
from livekit.api import Room

from tests.support.gateway import (
    SESSION_BODY,
    create_session,
    make_settings,
    metric,
    serving_gateway,
)
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from tests.support.polling import wait_until
from voice_gateway.livekit.clients import open_livekit
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions.endings import EndMark, delete_revived, revived_room_names
from voice_gateway.sessions.record import SessionRecord
from voice_gateway.standin import StandIn
from voice_gateway.vocabulary import session_id_named_by

SESSION_ID = "sess_" + "A" * 22
OTHER_ID = "sess_" + "B" * 22
TOKEN_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
WEBHOOK = "/api/voice/webhook"
REVIVED = 'voice_gateway_revived_rooms_deleted_total{found_by="webhook"}'


@pytest.mark.parametrize(
    ("room_name", "session_id"),
    [
        (f"foundry_nate_pm-agent_{SESSION_ID}", SESSION_ID),
        (f"foundry_a_b_c_pm-agent_{SESSION_ID}", SESSION_ID),  # user ids may hold "_"
        (f"foundry_{TOKEN_ID}", TOKEN_ID),
        (f"foundry_claim_{SESSION_ID}", None),  # an idempotency claim
        (f"foundry_ended_{SESSION_ID}", None),  # an end mark
        (f"foundry_ended_{TOKEN_ID}", None),
        (f"other_nate_pm-agent_{SESSION_ID}", None),  # another prefix
        (f"foundry_nate_pm-agent_sess_{'A' * 21}", None),  # too short an id
        (f"foundry__{SESSION_ID}", None),  # no user, no agent
    ],
)
def test_a_room_is_a_sessions_by_its_name_alone(room_name: str, session_id: str | None) -> None:
    assert session_id_named_by(room_name, "foundry") == session_id


def test_an_end_mark_revives_only_its_own_sessions_life_or_a_room_without_one(
    standin: StandIn,
) -> None:
    ended = _record(created_at="2026-12-01T10:00:00Z")
    room = ended.room_name("foundry")
    mark = EndMark(ended_room=room, ended_created_at=ended.created_at).model_dump_json()
    rooms = [
        standin.create_room(f"foundry_ended_{SESSION_ID}", metadata=mark),
        standin.create_room(room, metadata=ended.to_metadata()),
    ]
    new_life = _record(created_at="2026-12-01T11:00:00Z").to_metadata()
    empty = Room(name=room, metadata="")

    assert revived_room_names(rooms, "foundry") == {room}  # the old token's re-creation
    assert revived_room_names([rooms[0], empty], "foundry") == {room}  # a retried join's
    assert revived_room_names([rooms[0], Room(name=room, metadata=new_life)], "foundry") == set()
    for name in (f"foundry_ended_{SESSION_ID}", room):
        standin.state.store.delete_room(name)


@pytest.mark.parametrize(
    ("mark_name", "metadata"),
    [
        # A mark may only name a session room of its own session id.
        (f"foundry_ended_{OTHER_ID}", None),
        (f"foundry_ended_{SESSION_ID}", '{"ended_room": "foundry_not_ours"}'),
        (f"foundry_ended_{SESSION_ID}", "not json"),
        (f"foundry_ended_{SESSION_ID}", "[" * 100_000 + "]" * 100_000),  # nested too deep
    ],
)
def test_nothing_but_a_well_formed_mark_of_that_session_revives_a_room(
    mark_name: str, metadata: str | None
) -> None:
    room = f"foundry_nate_pm-agent_{SESSION_ID}"
    mark = (
        metadata
        or EndMark(ended_room=room, ended_created_at=_record().created_at).model_dump_json()
    )
    rooms = [Room(name=mark_name, metadata=mark), Room(name=room, metadata="")]

    assert revived_room_names(rooms, "foundry") == set()


def _record(created_at: str = "2026-12-01T10:00:00Z") -> SessionRecord:
    return SessionRecord(
        session_id=SESSION_ID,
        user_id="nate",
        agent_id="pm-agent",
        created_at=datetime.fromisoformat(created_at),
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_join_with_an_old_token_revives_the_room_and_the_gateway_ends_it(
    standin: StandIn,
) -> None:
    async with _gateway_getting_webhooks(standin) as client:
        created = await _ended_session(client)
        standin.join(created["token"])  # LiveKit re-creates the room from the token
        await wait_until(lambda: not standin.has_room(created["room_name"]))
        revived = await metric(client, REVIVED)

    assert revived == 1


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_revived_room_livekit_cannot_be_asked_about_is_left_to_the_sweep(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async with _gateway_getting_webhooks(standin) as client:
        room = (await _ended_session(client))["room_name"]
        standin.fail_next(status=503)  # every call, until clear_faults()
        with caplog.at_level(logging.WARNING, logger="voice_gateway.webhooks"):
            standin.create_room(room)
            await wait_until(lambda: "could not follow room_started" in caplog.text)
        standin.clear_faults()

    assert standin.has_room(room)
    standin.state.store.delete_room(room)


@asynccontextmanager
async def _gateway_getting_webhooks(standin: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_gateway(make_settings(standin, api_keys=[SERVICE_KEY])) as url:
        standin.set_webhook_urls([f"{url}{WEBHOOK}"])
        async with httpx.AsyncClient(base_url=url, headers=SERVICE_AUTH) as client:
            yield client


async def _ended_session(client: httpx.AsyncClient) -> dict[str, str]:
    created: dict[str, str] = (await create_session(client)).json()
    await client.delete(f"/api/voice/session/{created['room_name']}")
    return created


async def test_a_revived_room_livekit_will_not_delete_now_is_left_for_the_next_try(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(standin)
    standin.create_room("foundry_nate_pm-agent_" + SESSION_ID)
    metrics = Metrics()
    async with open_livekit(settings, metrics) as livekit:
        standin.fail_next(status=500, code="internal", times=1)
        with caplog.at_level(logging.WARNING, logger="voice_gateway.endings"):
            deleted = await delete_revived(
                livekit.rooms, metrics, "foundry_nate_pm-agent_" + SESSION_ID, "sweep"
            )

    assert not deleted
    assert "could not delete revived room" in caplog.text
    assert standin.has_room("foundry_nate_pm-agent_" + SESSION_ID)
    standin.state.store.delete_room("foundry_nate_pm-agent_" + SESSION_ID)


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_new_life_under_an_ended_sessions_name_is_left_alone(standin: StandIn) -> None:
    key = {"Idempotency-Key": "order-7"}
    async with _gateway_getting_webhooks(standin) as client:
        first = (await client.post("/api/voice/session", json=SESSION_BODY, headers=key)).json()
        await client.delete(f"/api/voice/session/{first['room_name']}")
        # The claim closes 2 min past expires_at; the end mark may outlive it. A replay of the
        # key then starts the session anew: same id, same room name, a later created_at.
        standin.state.store.delete_room(f"foundry_claim_{first['session_id']}")
        await anyio.sleep(1.1)  # created_at has whole seconds
        before = len(standin.webhook_deliveries())
        again = await client.post("/api/voice/session", json=SESSION_BODY, headers=key)
        # The gateway has answered the new room's room_started (after deciding about it).
        await wait_until(lambda: _answered_room_started(standin, before, first["room_name"]))
        revived = await metric(client, REVIVED)

    assert again.status_code == 201
    assert again.json()["room_name"] == first["room_name"]
    assert standin.has_room(first["room_name"])
    assert revived == 0


def _answered_room_started(standin: StandIn, since: int, room: str) -> bool:
    return any(
        d.event == "room_started" and d.status == 200 and room.encode() in d.body
        for d in standin.webhook_deliveries()[since:]
    )

"""An ended session stays ended (sessions/endings.py): which rooms count as a session's, what an
end mark says, and a revived room found by its webhook or by the sweep. The real server's side
of it (a real client rejoining with an old token) is tests/e2e/test_final_end.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.support.gateway import create_session, make_settings, metric, serving_gateway
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from tests.support.polling import wait_until
from voice_gateway.livekit.clients import open_livekit
from voice_gateway.ops.metrics import Metrics
from voice_gateway.sessions.endings import delete_revived, ended_room_names
from voice_gateway.standin import StandIn
from voice_gateway.vocabulary import session_id_named_by

SESSION_ID = "sess_" + "A" * 22
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


def test_end_marks_name_their_rooms_and_nothing_else_is_read_as_one(standin: StandIn) -> None:
    mark = standin.create_room(f"foundry_ended_{SESSION_ID}", metadata='{"ended_room": "r1"}')
    broken = standin.create_room(f"foundry_ended_{TOKEN_ID}", metadata="not json")
    odd = standin.create_room("foundry_ended_x", metadata='{"ended_room": 7}')
    listed = standin.create_room("foundry_nate_pm-agent_x", metadata='{"ended_room": "r2"}')

    assert ended_room_names([mark, broken, odd, listed], "foundry") == {"r1"}


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
            await wait_until(lambda: "could not check" in caplog.text)
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

"""Session caps on one replica (slots in memory): 429 concurrency_limit over a cap, exact under
concurrent creates, the token endpoint counted, a slot freed by every end of its session."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest

from tests.support.caps import (
    USAGE,
    after_sweeps,
    concurrent_creates,
    gateway_count,
    own_prefix,
    wait_for_gateway_count,
)
from tests.support.gateway import (
    create_session,
    make_settings,
    metric,
    running_gateway,
    serving_gateway,
)
from tests.support.join_tokens import TOKEN
from tests.support.polling import wait_until
from tests.support.problems import assert_problem
from tests.support.webhooks import WEBHOOK
from voice_gateway.sessions.record import record_of
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

ONE_SECOND = 1 / 3600
ENDED = "voice_gateway_sessions_ended_total"


def capped(standin: StandIn, **overrides: Any) -> Settings:
    return make_settings(standin, room_prefix=own_prefix(), **overrides)


async def test_a_session_over_the_per_user_cap_is_refused_naming_the_cap(
    standin: StandIn,
) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=2)) as client:
        admitted = [(await create_session(client)).status_code for _ in range(2)]
        refused = await create_session(client)

    assert admitted == [201, 201]
    body = assert_problem(refused, 429, "concurrency_limit")
    assert (body["cap"], body["limit"], body["count"]) == ("user", 2, 2)
    assert int(refused.headers["retry-after"]) >= 1


async def test_one_users_cap_leaves_other_users_alone(standin: StandIn) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        await create_session(client, user_id="nate")
        zoe = await create_session(client, user_id="zoe")

    assert zoe.status_code == 201


@pytest.mark.parametrize(
    ("setting", "cap", "second"),
    [
        ("max_sessions_per_agent", "agent", {"user_id": "zoe"}),
        ("max_sessions", "gateway", {"user_id": "zoe", "agent_id": "other-agent"}),
    ],
)
async def test_the_agent_and_gateway_caps_count_across_users(
    standin: StandIn, setting: str, cap: str, second: dict[str, str]
) -> None:
    async with running_gateway(capped(standin, **{setting: 1})) as client:
        await create_session(client)
        refused = await create_session(client, **second)

    assert assert_problem(refused, 429, "concurrency_limit")["cap"] == cap


async def test_fifty_concurrent_creates_under_a_cap_of_three_admit_exactly_three(
    standin: StandIn,
) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=3)) as client:
        statuses = await concurrent_creates([client], 50)
        counted = await gateway_count(client)
        refused = await metric(client, 'voice_gateway_sessions_refused_total{cap="user"}')

    assert statuses == {201: 3, 429: 47}
    assert (counted, refused) == (3, 47)


async def keyed_create(client: httpx.AsyncClient, key: str) -> int:
    """A create of nate's session with an Idempotency-Key: its status."""
    body = {"user_id": "nate", "agent_id": "pm-agent"}
    response = await client.post("/api/voice/session", json=body, headers={"Idempotency-Key": key})
    return response.status_code


async def test_an_idempotent_replay_is_neither_refused_nor_counted_twice(
    standin: StandIn,
) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        statuses = [await keyed_create(client, "cap-order-1") for _ in range(2)]
        counted = await gateway_count(client)

    assert statuses == [201, 201]
    assert counted == 1


async def test_a_replay_of_a_live_session_no_slot_knows_of_is_not_refused(
    standin: StandIn,
) -> None:
    # A restart loses the slots in memory; the replay finds its room live and is counted.
    settings = capped(standin, max_sessions_per_user=1)
    async with running_gateway(settings) as before_restart:
        await keyed_create(before_restart, "cap-order-2")
    async with running_gateway(settings) as client:
        await create_session(client, user_id="nate")  # takes the one slot the restart freed
        replay = await keyed_create(client, "cap-order-2")
        counted = await gateway_count(client)

    assert replay == 201
    assert counted == 2


async def test_a_key_refused_over_its_cap_is_refused_again_until_a_slot_frees(
    standin: StandIn,
) -> None:
    # The refused create left its Idempotency-Key's claim behind: its retry is no replay.
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        room_name = (await create_session(client)).json()["room_name"]
        refused = [await keyed_create(client, "cap-order-3") for _ in range(2)]
        await client.delete(f"/api/voice/session/{room_name}")
        admitted = await keyed_create(client, "cap-order-3")

    assert (refused, admitted) == ([429, 429], 201)


async def test_a_create_livekit_fails_frees_its_slot(standin: StandIn) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        standin.fail_next(status=500, code="internal", times=1)
        failed = await create_session(client)
        admitted = await create_session(client)

    assert (failed.status_code, admitted.status_code) == (502, 201)


async def test_delete_frees_the_slot_at_once(standin: StandIn) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        room_name = (await create_session(client)).json()["room_name"]
        await client.delete(f"/api/voice/session/{room_name}")
        admitted = await create_session(client)

    assert admitted.status_code == 201


@pytest.mark.usefixtures("webhooks_off_afterwards")
@pytest.mark.parametrize("reason", ["user_never_joined", "user_left"])
async def test_the_room_finished_webhook_frees_the_slot(standin: StandIn, reason: str) -> None:
    settings = capped(standin, max_sessions_per_user=1, solo_timeout_s=5)
    async with serving_gateway(settings) as url:
        standin.set_webhook_urls([f"{url}{WEBHOOK}"])
        async with httpx.AsyncClient(base_url=url) as client:
            room_name = (await create_session(client)).json()["room_name"]
            if reason == "user_left":
                standin.add_participant(room_name, "nate")
                await wait_until(lambda: _user_seen(standin, settings, room_name))
                standin.remove_participant(room_name, "nate")
            standin.close_idle_rooms(now=time.time() + 600)  # LiveKit's timeouts close it
            await wait_for_gateway_count(client, 0)
            ended = await metric(client, f'{ENDED}{{reason="{reason}"}}')
            admitted = await create_session(client)

    assert ended == 1
    assert admitted.status_code == 201


def _user_seen(standin: StandIn, settings: Settings, room_name: str) -> bool:
    metadata = standin.get_room(room_name).metadata
    record = record_of(room_name, metadata, settings.room_prefix)
    return record is not None and record.observed.user_joined_at is not None


async def test_a_session_ended_for_agent_failed_frees_its_slot(standin: StandIn) -> None:
    # No agent serves on the stand-in: the agent's join timeout ends the session.
    settings = capped(standin, max_sessions_per_user=1, agent_join_timeout_s=1)
    async with running_gateway(settings) as client:
        await create_session(client)
        refused = await create_session(client)
        await wait_for_gateway_count(client, 0)
        ended = await metric(client, f'{ENDED}{{reason="agent_failed"}}')
        admitted = await create_session(client)

    assert_problem(refused, 429, "concurrency_limit")
    assert ended == 1
    assert admitted.status_code == 201


async def test_the_sweep_frees_the_slot_of_a_session_whose_webhook_was_lost(
    standin: StandIn,
) -> None:
    # In process: the stand-in's webhooks reach no one.
    settings = capped(standin, max_sessions_per_user=1, reaper_interval_s=0.05)
    async with running_gateway(settings) as client:
        room_name = (await create_session(client)).json()["room_name"]
        await after_sweeps(client, 2)  # one has listed the room since (unseen, it has the grace)
        standin.state.store.delete_room(room_name)
        await wait_for_gateway_count(client, 0)


async def test_the_sweep_counts_live_sessions_a_restart_forgot(standin: StandIn) -> None:
    settings = capped(standin, max_sessions_per_user=1, reaper_interval_s=0.05)
    async with running_gateway(settings.model_copy(update={"reaper_interval_s": 3600})) as before:
        await create_session(before)
    async with running_gateway(settings) as client:
        await wait_for_gateway_count(client, 1)
        refused = await create_session(client)

    assert_problem(refused, 429, "concurrency_limit")


async def test_an_expired_session_the_reaper_ends_frees_its_slot(standin: StandIn) -> None:
    settings = capped(standin, max_sessions_per_user=1, reaper_interval_s=0.05)
    async with running_gateway(settings) as client:
        await create_session(client, session_duration_hours=ONE_SECOND)
        await wait_for_gateway_count(client, 0)


async def test_the_token_endpoint_counts_against_the_caps(standin: StandIn) -> None:
    async with running_gateway(capped(standin, max_sessions_per_user=1)) as client:
        issued = await client.post(TOKEN, json={"participant_identity": "nate"})
        refused = await client.post(TOKEN, json={"participant_identity": "nate"})
        session = await create_session(client, user_id="nate")

    assert issued.status_code == 201
    assert assert_problem(refused, 429, "concurrency_limit")["cap"] == "user"
    assert_problem(session, 429, "concurrency_limit")


async def test_a_token_nobody_joins_with_frees_its_slot_after_the_grace(
    standin: StandIn,
) -> None:
    settings = capped(
        standin, max_sessions_per_user=1, reservation_grace_s=1, reaper_interval_s=0.05
    )
    async with running_gateway(settings) as client:
        await client.post(TOKEN, json={"participant_identity": "nate"})
        await wait_for_gateway_count(client, 0)
        again = await client.post(TOKEN, json={"participant_identity": "nate"})

    assert again.status_code == 201


async def test_a_token_joined_with_stays_counted_past_the_grace(standin: StandIn) -> None:
    settings = capped(
        standin, max_sessions_per_user=1, reservation_grace_s=1, reaper_interval_s=0.05
    )
    async with running_gateway(settings) as client:
        issued = await client.post(TOKEN, json={"participant_identity": "nate"})
        standin.join(issued.json()["participant_token"])  # the first join creates the room
        await anyio.sleep(1.5)  # past the grace: only the room now holds the slot
        counted = await gateway_count(client)
        refused = await client.post(TOKEN, json={"participant_identity": "nate"})
    standin.state.store.delete_room(issued.json()["room_name"])

    assert counted == 1
    assert_problem(refused, 429, "concurrency_limit")


async def test_no_cap_is_set_by_default(standin: StandIn) -> None:
    settings = make_settings(standin)

    assert (settings.max_sessions, settings.max_sessions_per_agent) == (None, None)
    assert settings.max_sessions_per_user is None
    assert settings.reservation_grace_s is None  # as long as a token lives


async def test_usage_is_served_and_documented(client: httpx.AsyncClient) -> None:
    usage = await client.get(USAGE)
    document = (await client.get("/openapi.json")).json()

    assert usage.status_code == 200
    assert "get" in document["paths"][USAGE]
    for path in ("/api/voice/session", "/api/voice/token"):
        assert "429" in document["paths"][path]["post"]["responses"]


async def test_tokens_fetched_one_after_another_and_joined_later_stay_under_the_cap(
    standin: StandIn,
) -> None:
    # Each token's slot lasts as long as the token: a sweep between fetches frees none of them.
    settings = make_settings(standin, max_sessions_per_user=1, reaper_interval_s=0.05)
    async with running_gateway(settings) as client:
        first = await client.post("/api/voice/token", json={"participant_identity": "nate"})
        await anyio.sleep(0.3)  # several sweeps, the room not listed yet
        second = await client.post("/api/voice/token", json={"participant_identity": "nate"})

    assert first.status_code == 201
    assert second.status_code == 429
    assert second.json()["code"] == "concurrency_limit"

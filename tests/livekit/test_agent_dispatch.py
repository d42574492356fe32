"""The gateway's dispatch client (`LiveKitDispatches`) on the stand-in and the real server alike:
what ListDispatch answers before any worker took a room's job, for a room created without agents,
for a missing room, and which grant it takes. What needs a real worker is in tests/e2e."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from livekit import api

from tests.support.keys import API_KEY, API_SECRET
from tests.support.livekit_backend import Backend
from voice_gateway.livekit.clients import LiveKit, open_livekit
from voice_gateway.ops.metrics import Metrics

pytestmark = pytest.mark.slow
NO_WORKER = "agent-nobody-serves"


@asynccontextmanager
async def gateway_livekit(backend: Backend, metrics: Metrics) -> AsyncIterator[LiveKit]:
    # Beyond psrpc's 3 s: the real server takes that long to say a room is missing.
    async with open_livekit(backend.settings(livekit_timeout_s=5.0), metrics) as livekit:
        yield livekit


async def _create_room(backend: Backend, name: str, *agents: str) -> None:
    asked = [api.RoomAgentDispatch(agent_name=agent, metadata=f"for {agent}") for agent in agents]
    async with api.LiveKitAPI(backend.url, API_KEY, API_SECRET) as livekit:
        await livekit.room.create_room(api.CreateRoomRequest(name=name, agents=asked))


async def test_a_dispatch_no_worker_serves_has_no_job(backend: Backend) -> None:
    await _create_room(backend, "dispatched", NO_WORKER)
    async with gateway_livekit(backend, Metrics()) as livekit:
        [dispatch] = await livekit.dispatches.list_dispatch("dispatched")

    assert dispatch.id.startswith("AD_")
    assert (dispatch.agent_name, dispatch.room) == (NO_WORKER, "dispatched")
    assert dispatch.metadata == f"for {NO_WORKER}"
    assert dispatch.state.created_at > 0  # nanoseconds
    assert list(dispatch.state.jobs) == []


async def test_a_room_without_agents_has_one_dispatch_for_the_empty_name(backend: Backend) -> None:
    await _create_room(backend, "undispatched")
    async with gateway_livekit(backend, Metrics()) as livekit:
        [dispatch] = await livekit.dispatches.list_dispatch("undispatched")

    assert (dispatch.agent_name, list(dispatch.state.jobs)) == ("", [])


async def test_dispatches_of_a_missing_room_are_empty_after_livekits_3_s(backend: Backend) -> None:
    metrics = Metrics()
    async with gateway_livekit(backend, metrics) as livekit:
        started = time.monotonic()
        listed = await livekit.dispatches.list_dispatch("never-created")
        took_s = time.monotonic() - started

    assert listed == []
    assert 2.5 < took_s < 4.5  # psrpc's timeout: "no response from servers"
    labels = {"method": "ListDispatch", "outcome": "not_found"}
    assert metrics.registry.get_sample_value("voice_gateway_livekit_call_seconds_count", labels)


async def test_list_dispatch_wants_room_admin_of_that_very_room(backend: Backend) -> None:
    await _create_room(backend, "guarded", NO_WORKER)
    answers = []
    for grants in (
        api.VideoGrants(room_admin=True, room="another-room"),
        api.VideoGrants(room_create=True, room_list=True),
    ):
        token = api.AccessToken(API_KEY, API_SECRET).with_grants(grants).to_jwt()
        async with api.LiveKitAPI.with_token(token, backend.url) as livekit:
            with pytest.raises(api.TwirpError) as raised:
                await livekit.agent_dispatch.list_dispatch("guarded")
        answers.append((raised.value.status, raised.value.code, raised.value.message))

    assert answers == [(401, "unauthenticated", "permissions denied")] * 2


async def test_create_dispatch_adds_one_and_delete_dispatch_removes_it(backend: Backend) -> None:
    await _create_room(backend, "redispatched", NO_WORKER)
    async with api.LiveKitAPI(backend.url, API_KEY, API_SECRET) as livekit:
        added = await livekit.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="second", room="redispatched")
        )
        both = await livekit.agent_dispatch.list_dispatch("redispatched")
        deleted = await livekit.agent_dispatch.delete_dispatch(added.id, "redispatched")
        left = await livekit.agent_dispatch.list_dispatch("redispatched")
        with pytest.raises(api.TwirpError) as unknown:
            await livekit.agent_dispatch.delete_dispatch(added.id, "redispatched")

    assert sorted(d.agent_name for d in both) == [NO_WORKER, "second"]
    assert deleted.id == added.id
    assert [d.agent_name for d in left] == [NO_WORKER]
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    assert "dispatch ID not found" in unknown.value.message


async def test_create_dispatch_on_a_missing_room_creates_it(backend: Backend) -> None:
    async with api.LiveKitAPI(backend.url, API_KEY, API_SECRET) as livekit:
        await livekit.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=NO_WORKER, room="made-by-dispatch")
        )
        listed = await livekit.agent_dispatch.list_dispatch("made-by-dispatch")

    assert "made-by-dispatch" in await backend.rooms()
    assert sorted(d.agent_name for d in listed) == ["", NO_WORKER]

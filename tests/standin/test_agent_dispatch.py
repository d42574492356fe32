"""AgentDispatchService and the simulated agent workers (`StandIn.agents`): dispatches made by
CreateRoom, by a token's room configuration and by CreateDispatch; jobs and agents only for the
names a test serves."""

from __future__ import annotations

import re

import anyio
import pytest
from livekit.api import (
    AccessToken,
    CreateAgentDispatchRequest,
    CreateRoomRequest,
    LiveKitAPI,
    ParticipantInfo,
    RoomAgentDispatch,
    RoomConfiguration,
    ServerError,
    TwirpError,
    VideoGrants,
)
from livekit.protocol.agent import JobStatus
from livekit.protocol.models import DisconnectReason

from tests.support.polling import wait_until
from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import StandIn

DISPATCH_ID = re.compile(r"AD_[23456789A-HJ-NP-Za-km-z]{12}")
AGENT_IDENTITY = re.compile(r"agent-AJ_[23456789A-HJ-NP-Za-km-z]{12}")


@pytest.fixture(autouse=True)
def _prompt_missing_rooms(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real server takes psrpc's 3 s to say a room is missing; one test below measures it.
    monkeypatch.setattr(standin.state, "no_response_after_s", 0.0)


async def _create(lk: LiveKitAPI, room: str, *agents: str) -> None:
    dispatches = [RoomAgentDispatch(agent_name=name, metadata=f"for {name}") for name in agents]
    await lk.room.create_room(CreateRoomRequest(name=room, agents=dispatches))


def _agents(standin: StandIn, room: str) -> list[ParticipantInfo]:
    participants = standin.list_participants(room)
    return [p for p in participants if p.kind == ParticipantInfo.Kind.AGENT]


async def test_a_room_holds_one_dispatch_per_agent_and_no_job_without_a_worker(
    lk: LiveKitAPI,
) -> None:
    await _create(lk, "r1", "pm-agent", "notes-agent")

    listed = await lk.agent_dispatch.list_dispatch("r1")

    assert sorted(d.agent_name for d in listed) == ["notes-agent", "pm-agent"]
    assert all(DISPATCH_ID.fullmatch(d.id) and d.room == "r1" for d in listed)
    assert {d.metadata for d in listed} == {"for pm-agent", "for notes-agent"}
    assert all(d.state.created_at > 0 and not d.state.jobs for d in listed)


async def test_a_room_without_agents_holds_one_dispatch_for_the_empty_name(
    lk: LiveKitAPI,
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))

    [dispatch] = await lk.agent_dispatch.list_dispatch("r1")

    assert (dispatch.agent_name, list(dispatch.state.jobs)) == ("", [])


async def test_a_served_agent_runs_its_job_then_joins(lk: LiveKitAPI, standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.3)
    await _create(lk, "r1", "pm-agent")

    [before] = await lk.agent_dispatch.list_dispatch("r1")
    agents_before = _agents(standin, "r1")
    await wait_until(lambda: bool(_agents(standin, "r1")), timeout_s=2)
    [job] = before.state.jobs
    [agent] = _agents(standin, "r1")

    assert agents_before == []
    assert job.state.status == JobStatus.JS_RUNNING
    assert AGENT_IDENTITY.fullmatch(job.state.participant_identity)
    assert job.state.started_at > 0
    assert job.state.worker_id.startswith("AW_")
    assert agent.identity == job.state.participant_identity
    assert agent.attributes["lk.agent.name"] == "pm-agent"


async def test_an_agent_joining_is_told_by_a_webhook(standin: StandIn) -> None:
    told: list[tuple[str, str]] = []

    def listen(event: str, room: object, participant: ParticipantInfo | None) -> None:
        told.append((event, participant.identity if participant else ""))

    standin.state.store.listener = listen
    standin.agents.serve("pm-agent", join_after_s=0)
    try:
        standin.create_room("r1", agents=[RoomAgentDispatch(agent_name="pm-agent")])
        await wait_until(lambda: len(told) == 2, timeout_s=2)
    finally:
        standin.state.store.listener = standin.state.webhooks.notify

    assert told[0] == ("room_started", "")
    assert told[1][0] == "participant_joined"
    assert AGENT_IDENTITY.fullmatch(told[1][1])


async def test_a_token_room_configuration_dispatches_its_agents(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0)
    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name="pm-agent")])
    token = AccessToken(API_KEY, API_SECRET).with_identity("nate").with_room_config(config)
    standin.join(token.with_grants(VideoGrants(room_join=True, room="r1")).to_jwt())

    await wait_until(lambda: bool(_agents(standin, "r1")), timeout_s=2)
    [dispatch] = standin.list_dispatches("r1")

    assert dispatch.agent_name == "pm-agent"
    assert dispatch.state.jobs[0].state.status == JobStatus.JS_RUNNING


async def test_a_worker_serving_later_never_gets_an_earlier_dispatch(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    await _create(lk, "r1", "pm-agent")
    standin.agents.serve("pm-agent", join_after_s=0)

    [dispatch] = await lk.agent_dispatch.list_dispatch("r1")

    assert list(dispatch.state.jobs) == []
    assert _agents(standin, "r1") == []


async def test_a_failing_worker_fails_its_job_and_no_agent_comes(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.agents.fail("pm-agent", error="no GPU")
    await _create(lk, "r1", "pm-agent")

    [dispatch] = await lk.agent_dispatch.list_dispatch("r1")
    [job] = dispatch.state.jobs

    assert (job.state.status, job.state.error) == (JobStatus.JS_FAILED, "no GPU")
    assert job.state.ended_at > 0
    assert _agents(standin, "r1") == []


async def test_a_worker_that_never_joins_leaves_a_running_job(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.agents.never_join("pm-agent")
    await _create(lk, "r1", "pm-agent")

    [dispatch] = await lk.agent_dispatch.list_dispatch("r1")

    assert dispatch.state.jobs[0].state.status == JobStatus.JS_RUNNING
    assert _agents(standin, "r1") == []


async def test_an_agent_that_leaves_is_gone_but_its_job_still_runs(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0)
    standin.create_room("r1", agents=[RoomAgentDispatch(agent_name="pm-agent")])
    await wait_until(lambda: bool(_agents(standin, "r1")), timeout_s=2)

    left = standin.agents.leave("r1", reason=DisconnectReason.CONNECTION_TIMEOUT)

    assert len(left) == 1
    assert AGENT_IDENTITY.fullmatch(left[0])
    assert _agents(standin, "r1") == []
    [dispatch] = standin.list_dispatches("r1")
    assert dispatch.state.jobs[0].state.status == JobStatus.JS_RUNNING


async def test_no_agent_arrives_in_a_room_deleted_before_it_joins(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.2)
    standin.create_room("r1", agents=[RoomAgentDispatch(agent_name="pm-agent")])
    standin.state.store.delete_room("r1")
    standin.create_room("r1")  # a new life under the same name: not the job's room

    await anyio.sleep(0.4)

    assert _agents(standin, "r1") == []


async def test_reset_stops_agents_on_their_way(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0.2)
    standin.create_room("r1", agents=[RoomAgentDispatch(agent_name="pm-agent")])
    standin.agents.reset()

    await anyio.sleep(0.4)

    assert _agents(standin, "r1") == []


async def test_a_stopped_worker_serves_no_new_dispatch(standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0)
    standin.agents.stop_serving("pm-agent")
    standin.create_room("r1", agents=[RoomAgentDispatch(agent_name="pm-agent")])

    assert list(standin.list_dispatches("r1")[0].state.jobs) == []


async def test_create_dispatch_adds_one_and_its_agent_joins(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    standin.agents.serve("notes-agent", join_after_s=0)
    await _create(lk, "r1", "pm-agent")

    created = await lk.agent_dispatch.create_dispatch(
        CreateAgentDispatchRequest(agent_name="notes-agent", room="r1", metadata="m")
    )
    await wait_until(lambda: bool(_agents(standin, "r1")), timeout_s=2)
    listed = await lk.agent_dispatch.list_dispatch("r1")

    assert (created.agent_name, created.metadata) == ("notes-agent", "m")
    assert list(created.state.jobs) == []
    assert sorted(d.agent_name for d in listed) == ["notes-agent", "pm-agent"]


async def test_create_dispatch_creates_a_missing_room(lk: LiveKitAPI, standin: StandIn) -> None:
    await lk.agent_dispatch.create_dispatch(CreateAgentDispatchRequest(agent_name="a", room="r1"))

    names = sorted(d.agent_name for d in standin.list_dispatches("r1"))

    assert names == ["", "a"]  # the room's own, as for any room made without agents


async def test_delete_dispatch_removes_it_and_its_agent(lk: LiveKitAPI, standin: StandIn) -> None:
    standin.agents.serve("pm-agent", join_after_s=0)
    await _create(lk, "r1", "pm-agent")
    await wait_until(lambda: bool(_agents(standin, "r1")), timeout_s=2)
    [dispatch] = await lk.agent_dispatch.list_dispatch("r1")

    deleted = await lk.agent_dispatch.delete_dispatch(dispatch.id, "r1")

    assert deleted.id == dispatch.id
    assert await lk.agent_dispatch.list_dispatch("r1") == []
    assert _agents(standin, "r1") == []


async def test_delete_dispatch_of_an_unknown_id_is_not_found(lk: LiveKitAPI) -> None:
    await _create(lk, "r1", "pm-agent")

    with pytest.raises(TwirpError) as raised:
        await lk.agent_dispatch.delete_dispatch("AD_unknown", "r1")

    assert (raised.value.status, raised.value.code) == (404, "not_found")


async def test_dispatches_of_a_missing_room_are_a_503_after_psrpcs_timeout(
    lk: LiveKitAPI, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standin.state, "no_response_after_s", 0.2)
    with pytest.raises(ServerError) as raised:
        await lk.agent_dispatch.list_dispatch("missing")

    assert (raised.value.status, raised.value.code) == (503, "unavailable")
    assert raised.value.message == "twirp error unknown: no response from servers"


async def test_dispatch_calls_want_room_admin_of_that_room(standin: StandIn) -> None:
    standin.create_room("r1")
    other_room = _admin_client(standin, "r2")
    try:
        with pytest.raises(TwirpError) as raised:
            await other_room.agent_dispatch.list_dispatch("r1")
    finally:
        await other_room.aclose()

    assert (raised.value.status, raised.value.code) == (401, "unauthenticated")


def _admin_client(standin: StandIn, room: str) -> LiveKitAPI:
    grants = VideoGrants(room_admin=True, room=room)
    token = AccessToken(API_KEY, API_SECRET).with_grants(grants).to_jwt()
    return LiveKitAPI.with_token(token, standin.url)

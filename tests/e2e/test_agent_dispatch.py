"""The agent dispatch on the real server with the example agent, read through the gateway's
client: the agent joins as `agent-<job id>`, and a job, when ListDispatch shows it at all, runs
and names it; a deleted room's dispatches are gone; a killed worker's agent lingers about 20 s
and nothing in the dispatch tells of the crash."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from livekit import api

from tests.support.agent_worker import agent_worker
from tests.support.gateway import create_session
from tests.support.polling import poll_until
from tests.support.real_stack import AGENT_NAME, RealStack
from voice_gateway.livekit.clients import LiveKit, open_livekit
from voice_gateway.ops.metrics import Metrics

pytestmark = pytest.mark.slow
AGENT_IDENTITY = re.compile(r"agent-AJ_[23456789A-HJ-NP-Za-km-z]{12}")


@asynccontextmanager
async def gateway_livekit(real_stack: RealStack) -> AsyncIterator[LiveKit]:
    async with open_livekit(real_stack.settings(), Metrics()) as livekit:
        yield livekit


async def _job_of(livekit: LiveKit, room: str) -> api.Job | None:
    dispatches = await livekit.dispatches.list_dispatch(room)
    jobs = [job for dispatch in dispatches for job in dispatch.state.jobs]
    return jobs[0] if jobs else None


async def _agents_in(real_stack: RealStack, room: str) -> list[api.ParticipantInfo]:
    participants = await real_stack.participants(room)
    return [p for p in participants if p.kind == api.ParticipantInfo.Kind.AGENT]


async def test_the_agent_joins_as_its_job_and_the_job_names_it(
    real_stack: RealStack,
) -> None:
    async with real_stack.gateway() as gateway, gateway_livekit(real_stack) as livekit:
        room = (await create_session(gateway, agent_id=AGENT_NAME)).json()["room_name"]
        started = time.monotonic()
        [agent] = await poll_until(lambda: _agents_in(real_stack, room), 5, interval_s=0.01)
        agent_present_s = time.monotonic() - started
        [dispatch] = await livekit.dispatches.list_dispatch(room)
        await gateway.delete(f"/api/voice/session/{room}")
        after_delete = await livekit.dispatches.list_dispatch(room)

    print(f"agent present {agent_present_s:.3f} s after CreateRoom, {len(dispatch.state.jobs)} job")
    assert agent_present_s < 5
    assert AGENT_IDENTITY.fullmatch(agent.identity)
    assert agent.attributes["lk.agent.name"] == AGENT_NAME
    assert dispatch.agent_name == AGENT_NAME
    # The job reaches ListDispatch when the room hears back from the worker: 0.2 s after
    # CreateRoom at best, seconds after the agent joined (or not yet) at worst. When it is
    # there it is running and names the agent.
    for job in dispatch.state.jobs:
        assert job.state.status == api.JobStatus.JS_RUNNING
        assert job.state.participant_identity == agent.identity == f"agent-{job.id}"
    assert after_delete == []


async def test_a_killed_worker_leaves_its_job_running_and_its_agent_for_about_20_s(
    real_stack: RealStack, tmp_path: Path
) -> None:
    doomed = "e2e-doomed-agent"  # its own worker: the session's one serves the other tests
    with agent_worker(real_stack.server.ws_url, doomed, tmp_path) as worker:
        async with gateway_livekit(real_stack) as livekit:
            await livekit.rooms.create(
                api.CreateRoomRequest(
                    name="doomed", agents=[api.RoomAgentDispatch(agent_name=doomed)]
                )
            )
            [agent] = await poll_until(lambda: _agents_in(real_stack, "doomed"), 10)
            await anyio.sleep(1.5)  # connected, media flowing: killed mid-session
            worker.kill()
            killed = time.monotonic()
            await anyio.sleep(5)
            agents_after_5_s = await _agents_in(real_stack, "doomed")
            job_after_5_s = await _job_of(livekit, "doomed")
            await poll_until(lambda: _no_agent_in(real_stack, "doomed"), 30, interval_s=0.25)
            agent_gone_s = time.monotonic() - killed
            job_after_gone = await _job_of(livekit, "doomed")
            await livekit.rooms.delete("doomed")

    print(f"agent of a killed worker gone after {agent_gone_s:.1f} s")
    assert [a.identity for a in agents_after_5_s] == [agent.identity]
    assert job_after_5_s is not None
    assert job_after_5_s.state.status == api.JobStatus.JS_RUNNING
    assert 15 < agent_gone_s < 30
    assert job_after_gone is not None
    assert job_after_gone.state.status == api.JobStatus.JS_RUNNING


async def _no_agent_in(real_stack: RealStack, room: str) -> bool:
    return not await _agents_in(real_stack, room)

"""Agent dispatches and their jobs, shaped as the server keeps them (rtc/room.go, agent/worker.go).

A room holds one dispatch per agent asked for when it was created (CreateRoom's `agents`, or the
joining token's `roomConfig.agents`), or one for the empty agent name when none was asked for: the
server's backward-compatible "any unnamed worker". A dispatch has no job until a worker took it;
then one, JS_RUNNING from the moment the worker accepted, naming the participant identity the
agent will join with.
"""

from __future__ import annotations

from livekit.protocol.agent import Job, JobState, JobStatus, JobType
from livekit.protocol.agent_dispatch import AgentDispatch, AgentDispatchState, RoomAgentDispatch
from livekit.protocol.models import ParticipantInfo, ParticipantPermission, Room
from livekit.protocol.room import CreateRoomRequest

from .guid import new_guid

DISPATCH_PREFIX = "AD_"
JOB_PREFIX = "AJ_"
WORKER_PREFIX = "AW_"
AGENT_IDENTITY_PREFIX = "agent-"  # the Agents SDK joins as `agent-<job id>`
# What the server adds to an agent participant's attributes (agent/worker.go and the SDK).
AGENT_NAME_ATTRIBUTES = ("lk.agent.name", "lk.agent_name")


def room_dispatches(request: CreateRoomRequest, now_ns: int) -> list[AgentDispatch]:
    asked = list(request.agents) or [RoomAgentDispatch()]  # createAgentDispatchesFromRoomAgent
    return [new_dispatch(request.name, a.agent_name, a.metadata, now_ns) for a in asked]


def new_dispatch(room: str, agent_name: str, metadata: str, now_ns: int) -> AgentDispatch:
    return AgentDispatch(
        id=new_guid(DISPATCH_PREFIX),
        agent_name=agent_name,
        room=room,
        metadata=metadata,
        state=AgentDispatchState(created_at=now_ns),
    )


def new_job(dispatch: AgentDispatch, room: Room, worker_id: str, now_ns: int) -> Job:
    """The job as a worker that accepted it leaves it: running, its agent's identity named."""
    job_id = new_guid(JOB_PREFIX)
    state = JobState(
        status=JobStatus.JS_RUNNING,
        participant_identity=AGENT_IDENTITY_PREFIX + job_id,
        worker_id=worker_id,
        started_at=now_ns,
        updated_at=now_ns,
    )
    return Job(
        id=job_id,
        dispatch_id=dispatch.id,
        type=JobType.JT_ROOM,
        room=room,
        agent_name=dispatch.agent_name,
        metadata=dispatch.metadata,
        state=state,
    )


def failed(job: Job, error: str, now_ns: int) -> Job:
    job.state.status = JobStatus.JS_FAILED
    job.state.error = error
    job.state.participant_identity = ""
    job.state.ended_at = job.state.updated_at = now_ns
    return job


def agent_participant(job: Job) -> ParticipantInfo:
    """The participant the Agents SDK joins a job's room as."""
    return ParticipantInfo(
        identity=job.state.participant_identity,
        kind=ParticipantInfo.Kind.AGENT,
        state=ParticipantInfo.ACTIVE,
        attributes=dict.fromkeys(AGENT_NAME_ATTRIBUTES, job.agent_name),
        permission=ParticipantPermission(
            can_subscribe=True, can_publish=True, can_publish_data=True, agent=True
        ),
    )

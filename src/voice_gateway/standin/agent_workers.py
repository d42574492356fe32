"""Simulated agent workers: what a LiveKit Agents worker registered under an agent name does with
the dispatches the server hands it, under a test's control (`StandIn.agents`).

As the real server does (docs/livekit-observed.md, "Agent dispatch"): a dispatch for a name no
worker serves gets no job, ever, and is not served by a worker that registers later; a served
name's job is JS_RUNNING, naming `agent-<job id>`, as soon as the worker accepts, and the agent
participant (kind AGENT) joins a moment later, told by a `participant_joined` webhook.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum

from livekit.protocol.agent_dispatch import AgentDispatch
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room

from .dispatches import WORKER_PREFIX, agent_participant, failed, new_job
from .guid import new_guid
from .store import RoomStore

# What the real worker took here from CreateRoom to its agent in the room (0.22 s to the job,
# 0.30 s to the participant).
REAL_JOIN_AFTER_S = 0.3
FAILURE = "agent worker failed the job"


class Behaviour(Enum):
    JOIN = "join"  # takes the job, its agent joins after `join_after_s`
    NEVER_JOIN = "never_join"  # takes the job (JS_RUNNING), its agent never comes
    FAIL = "fail"  # the job ends JS_FAILED at once, no agent


@dataclass(frozen=True)
class Worker:
    behaviour: Behaviour
    worker_id: str
    join_after_s: float = REAL_JOIN_AFTER_S
    error: str = FAILURE


class AgentWorkers:
    """Workers by agent name; none by default, so rooms get dispatches but never an agent."""

    def __init__(self, store: RoomStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._workers: dict[str, Worker] = {}
        self._pending: set[threading.Timer] = set()

    def serve(self, agent_name: str, *, join_after_s: float = REAL_JOIN_AFTER_S) -> None:
        """A worker for `agent_name`: each new dispatch gets a running job at once and its agent
        joins `join_after_s` later (unless the room ended meanwhile)."""
        self._register(agent_name, Worker(Behaviour.JOIN, new_guid(WORKER_PREFIX), join_after_s))

    def never_join(self, agent_name: str) -> None:
        """A worker that takes each job (JS_RUNNING, identity named) but whose agent never joins:
        what a real worker whose entrypoint fails before connecting leaves behind."""
        self._register(agent_name, Worker(Behaviour.NEVER_JOIN, new_guid(WORKER_PREFIX)))

    def fail(self, agent_name: str, error: str = FAILURE) -> None:
        """A worker whose jobs end JS_FAILED with `error`, no agent joining. The OSS server
        1.13.5 never shows JS_FAILED in ListDispatch; newer servers and Cloud may."""
        worker = Worker(Behaviour.FAIL, new_guid(WORKER_PREFIX), error=error)
        self._register(agent_name, worker)

    def stop_serving(self, agent_name: str) -> None:
        """No worker for that name any more: later dispatches get no job (agents in rooms stay,
        joins already scheduled still happen)."""
        with self._lock:
            self._workers.pop(agent_name, None)

    def leave(self, room: str, *, reason: int = DisconnectReason.CLIENT_INITIATED) -> list[str]:
        """Every agent participant of `room` leaves (`participant_left` with `reason`); returns
        their identities. Their jobs stay JS_RUNNING in ListDispatch, as on the real server."""
        agents = [p.identity for p in self._store.list_participants(room) if _is_agent(p)]
        return [a for a in agents if self._store.remove_participant(room, a, reason)]

    def reset(self) -> None:
        """No workers, and no agent still on its way."""
        with self._lock:
            self._workers.clear()
            pending, self._pending = self._pending, set()
        for timer in pending:
            timer.cancel()

    def on_dispatch(self, room: Room, dispatch: AgentDispatch) -> None:
        """The store's dispatch listener: the worker serving that name, if any, takes the job."""
        with self._lock:
            worker = self._workers.get(dispatch.agent_name)
        if worker is None:
            return  # "not dispatching agent job since no worker is available": no job, ever
        job = new_job(dispatch, room, worker.worker_id, time.time_ns())
        if worker.behaviour is Behaviour.FAIL:
            failed(job, worker.error, time.time_ns())
        if self._store.add_job(room, job) and worker.behaviour is Behaviour.JOIN:
            self._join_later(room, agent_participant(job), worker.join_after_s)

    def _register(self, agent_name: str, worker: Worker) -> None:
        with self._lock:
            self._workers[agent_name] = worker

    def _join_later(self, room: Room, agent: ParticipantInfo, after_s: float) -> None:
        # A timer thread: dispatches arrive from the server's loop and from test threads alike,
        # and the store is thread-safe.
        timer = threading.Timer(after_s, lambda: self._join(room, agent, timer))
        timer.daemon = True
        with self._lock:
            self._pending.add(timer)
        timer.start()

    def _join(self, room: Room, agent: ParticipantInfo, timer: threading.Timer) -> None:
        with self._lock:
            if timer not in self._pending:
                return  # reset meanwhile
            self._pending.discard(timer)
        self._store.join_agent(room, agent)


def _is_agent(participant: ParticipantInfo) -> bool:
    return participant.kind == ParticipantInfo.Kind.AGENT

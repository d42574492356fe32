"""`"wait_for_agent": true`: the time from request to 201 of `POST /api/voice/session`, with the
real livekit-server and the example agent, beside the same POST without it.

One stack for the whole part: the server (webhooks to the gateway, as in production, so a join
wakes the waiting request at once), the example agent's worker and the gateway. Every session is
created, then deleted once its agent is in the room (the baseline's session too, so both modes
give the worker the same jobs), one after another or from a few clients at once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import httpx

from .agent_worker import AGENT_NAME, jobs_seen, start_agent_worker
from .children import Child, Children, StartFailure, free_port
from .livekit_server import start_livekit_server
from .spread import percentile
from .targets import Credentials, child_env, start_gateway_process

Mode = Literal["baseline", "wait"]
SESSION_PATH = "/api/voice/session"
WEBHOOK_PATH = "/api/voice/webhook"
# Each session's agent takes a peer connection or two; 5 at once, and rooms closing behind them.
UDP_PORTS = 200
REQUEST_TIMEOUT_S = 30.0
AGENT_JOIN_TIMEOUT_S = 10.0  # the baseline's wait for its agent before the DELETE
POLL_S = 0.25
WARMUP_SESSIONS = 3  # per mode: the worker's first job processes and the pools, not measured


class MeasureFailure(Exception):
    """A session was not what it should be (not a 201, no agent, not deleted)."""


@dataclass(frozen=True)
class Shape:
    mode: Mode
    concurrency: int


@dataclass(frozen=True)
class WaitRun:
    shape: Shape
    seconds: list[float]  # request to 201, per session
    after_join_s: list[float]  # 201 minus the agent's joined_at (LiveKit's clock): wait only
    wall_s: float

    def p(self, pct: float) -> float:
        return percentile(self.seconds, pct) * 1000

    def after_join_p(self, pct: float) -> float | None:
        return percentile(self.after_join_s, pct) * 1000 if self.after_join_s else None


@dataclass(frozen=True)
class AgentStack:
    gateway_url: str
    gateway: Child
    server: Child
    worker: Child


def start_stack(children: Children, creds: Credentials) -> AgentStack:
    gateway_port = free_port()  # before the server: its webhook URL names it
    server, livekit_url = start_livekit_server(
        children, "agent-wait-livekit-server", child_env(), creds.livekit_key,
        creds.livekit_secret, webhook_urls=[f"http://127.0.0.1:{gateway_port}{WEBHOOK_PATH}"],
        udp_ports=UDP_PORTS,
    )  # fmt: skip
    worker = start_agent_worker(children, livekit_url.replace("http://", "ws://"), creds)
    extra = {"VOICE_GATEWAY_ALLOWED_AGENTS": AGENT_NAME}
    gateway, url = start_gateway_process(
        children, creds, livekit_url, "agent-wait", extra, gateway_port
    )
    return AgentStack(url, gateway, server, worker)


def run_shapes(
    stack: AgentStack, creds: Credentials, shapes: Sequence[Shape], sessions: int, rounds: int
) -> list[WaitRun]:
    """Every shape once per round, in the same order each round (interleaved)."""
    return anyio.run(_run_shapes, stack, creds, shapes, sessions, rounds)


async def _run_shapes(
    stack: AgentStack, creds: Credentials, shapes: Sequence[Shape], sessions: int, rounds: int
) -> list[WaitRun]:
    headers = {"Authorization": f"Bearer {creds.caller_key}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as client:
        numbers = itertools.count()
        for mode in ("baseline", "wait"):
            await _measure(client, Shape(mode, 1), WARMUP_SESSIONS, numbers)
        runs = []
        for _ in range(rounds):
            for shape in shapes:
                runs.append(await _measure(client, shape, sessions, numbers))
    dispatched, _ = jobs_seen(stack.worker)
    expected = WARMUP_SESSIONS * 2 + sessions * len(shapes) * rounds
    if dispatched < expected:
        raise MeasureFailure(f"the agent took {dispatched} jobs of {expected} sessions")
    return runs


async def _measure(
    client: httpx.AsyncClient, shape: Shape, sessions: int, numbers: itertools.count[int]
) -> WaitRun:
    seconds: list[float] = []
    after_join: list[float] = []
    todo = iter(range(sessions))

    async def one_client() -> None:
        for _ in todo:
            took, late = await _one_session(client, shape.mode, next(numbers))
            seconds.append(took)
            if late is not None:
                after_join.append(late)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(shape.concurrency):
            group.start_soon(one_client)
    return WaitRun(shape, seconds, after_join, time.perf_counter() - started)


async def _one_session(
    client: httpx.AsyncClient, mode: Mode, number: int
) -> tuple[float, float | None]:
    """Request to 201 in seconds; for `wait`, also how long after the agent's join it came."""
    body: dict[str, Any] = {"user_id": f"bench-{mode}-{number}", "agent_id": AGENT_NAME}
    if mode == "wait":
        body["wait_for_agent"] = True
    started = time.perf_counter()
    answer = await client.post(SESSION_PATH, json=body)
    took = time.perf_counter() - started
    answered_at = datetime.now(UTC)
    if answer.status_code != 201:
        raise MeasureFailure(f"{mode}: answered {answer.status_code}: {answer.text[:300]}")
    created = answer.json()
    late = None
    if mode == "wait":
        joined_at = datetime.fromisoformat(created["agent"]["joined_at"].replace("Z", "+00:00"))
        late = (answered_at - joined_at).total_seconds()
    else:
        await _until_agent_joined(client, created["room_name"])
    await _delete(client, created["room_name"])
    return took, late


async def _until_agent_joined(client: httpx.AsyncClient, room_name: str) -> None:
    with anyio.move_on_after(AGENT_JOIN_TIMEOUT_S):
        while True:
            seen = await client.get(f"{SESSION_PATH}/{room_name}")
            if seen.status_code == 200 and (seen.json().get("agent") or {}).get("state") == (
                "joined"
            ):
                return
            await anyio.sleep(POLL_S)
    raise MeasureFailure(f"no agent in {room_name} within {AGENT_JOIN_TIMEOUT_S:g} s")


async def _delete(client: httpx.AsyncClient, room_name: str) -> None:
    deleted = await client.delete(f"{SESSION_PATH}/{room_name}")
    if deleted.status_code not in (200, 204):
        raise MeasureFailure(f"DELETE {room_name}: {deleted.status_code}: {deleted.text[:300]}")


def check_alive(stack: AgentStack) -> None:
    for child in (stack.server, stack.worker, stack.gateway):
        if child.process.poll() is not None:
            raise StartFailure(f"{child.name} exited with status {child.process.returncode}")

"""`GET /api/voice/sessions` at a number of live sessions: the LiveKit stand-in holding that many
of the gateway's sessions (created through the gateway, one POST each), and wrk loading a page of
the list at a few connections.

The gateway runs with `VOICE_GATEWAY_AGENT_JOIN_TIMEOUT_S=0`: no agent ever joins a stand-in's
room, so at the default 30 s the gateway would end every session while the benchmark reads the
list; and `VOICE_GATEWAY_USER_JOIN_TIMEOUT_S=0` (no user joins either; the room's empty timeout
then lies past the session's end). Every session is `waiting_for_agent`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from .children import Child, Children, StartFailure, cpu_seconds
from .targets import Credentials, start_gateway_process, start_standin
from .wrk import WrkResult, run_wrk

LIST_PATH = "/api/voice/sessions"
SESSION_PATH = "/api/voice/session"
GET_SCRIPT = Path(__file__).with_name("get.lua")
QUERIES = ("limit=20", "limit=100", "status=active&limit=20")
LIMITS_OFF = {"VOICE_GATEWAY_AGENT_JOIN_TIMEOUT_S": "0", "VOICE_GATEWAY_USER_JOIN_TIMEOUT_S": "0"}
FILL_CONCURRENCY = 16
CALL_COUNT = re.compile(
    r'^voice_gateway_livekit_call_seconds_count\{method="(\w+)",[^}]*\} ([0-9.e+]+)$', re.M
)


@dataclass(frozen=True)
class ListStack:
    sessions: int
    gateway_url: str
    processes: Mapping[str, Child]  # "gateway", "livekit" (the stand-in)


@dataclass(frozen=True)
class ListRun:
    sessions: int
    query: str
    connections: int
    result: WrkResult
    cpu_s: Mapping[str, float | None]  # by role, over the measured run
    list_rooms: float  # ListRooms calls the gateway made over the measured run

    @property
    def answered(self) -> int:
        return self.result.requests

    def cpu_us_per_request(self, role: str) -> float | None:
        cpu = self.cpu_s.get(role)
        return None if cpu is None or not self.answered else cpu * 1e6 / self.answered

    def cpu_percent(self, role: str) -> float | None:
        cpu = self.cpu_s.get(role)
        return None if cpu is None else 100 * cpu / self.result.duration_s

    @property
    def list_rooms_per_request(self) -> float:
        return self.list_rooms / self.answered if self.answered else 0.0


def start_stack(children: Children, creds: Credentials, sessions: int) -> ListStack:
    label = f"list-{sessions}"
    standin, livekit_url = start_standin(children, creds, 0, label)
    gateway, url = start_gateway_process(children, creds, livekit_url, label, LIMITS_OFF)
    stack = ListStack(sessions, url, {"gateway": gateway, "livekit": standin})
    anyio.run(_fill, stack, creds)
    return stack


async def _fill(stack: ListStack, creds: Credentials) -> None:
    """`sessions` sessions through the gateway, then the list must hold exactly them."""
    headers = {"Authorization": f"Bearer {creds.caller_key}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30) as client:
        todo = iter(range(stack.sessions))

        async def one_client() -> None:
            for number in todo:
                body = {"user_id": f"bench-list-{number}", "agent_id": "pm-agent"}
                created = await client.post(SESSION_PATH, json=body)
                if created.status_code != 201:
                    raise StartFailure(f"fill: {created.status_code}: {created.text[:300]}")

        async with anyio.create_task_group() as group:
            for _ in range(FILL_CONCURRENCY):
                group.start_soon(one_client)
        listed = await _count_listed(client)
    if listed != stack.sessions:
        raise StartFailure(f"the list holds {listed} sessions, not {stack.sessions}")


async def _count_listed(client: httpx.AsyncClient) -> int:
    """Every page of the list, followed by its cursor."""
    counted, cursor = 0, None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await client.get(LIST_PATH, params=params)
        if page.status_code != 200:
            raise StartFailure(f"list: {page.status_code}: {page.text[:300]}")
        counted += len(page.json()["sessions"])
        if not (cursor := page.json()["next_cursor"]):
            return counted


def measure(
    wrk: str,
    stack: ListStack,
    creds: Credentials,
    query: str,
    *,
    connections: int,
    duration_s: int,
    warmup_s: int,
) -> ListRun:
    url = f"{stack.gateway_url}{LIST_PATH}?{query}"

    def load(seconds: int) -> WrkResult:
        return run_wrk(
            wrk, url, connections=connections, threads=1, duration_s=seconds,
            api_key=creds.caller_key, script=GET_SCRIPT,
        )  # fmt: skip

    if warmup_s:
        load(warmup_s)
    calls_before = list_rooms_calls(stack)
    before = {role: cpu_seconds(child.pid) for role, child in stack.processes.items()}
    result = load(duration_s)
    after = {role: cpu_seconds(child.pid) for role, child in stack.processes.items()}
    calls = list_rooms_calls(stack) - calls_before
    cpu = {role: _used(before[role], after[role]) for role in stack.processes}
    return ListRun(stack.sessions, query, connections, result, cpu, calls)


def _used(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def list_rooms_calls(stack: ListStack) -> float:
    """ListRooms calls the gateway has made, every outcome, from its /metrics."""
    metrics = httpx.get(stack.gateway_url + "/metrics", timeout=10).text
    return sum(float(n) for method, n in CALL_COUNT.findall(metrics) if method == "ListRooms")


def check_alive(stacks: Sequence[ListStack]) -> None:
    for stack in stacks:
        for child in stack.processes.values():
            if child.process.poll() is not None:
                raise StartFailure(f"{child.name} exited with status {child.process.returncode}")

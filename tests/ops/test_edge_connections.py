"""How many connections one client may hold, over a real `voice-gateway serve`: the open-file
limit raised at start, connections past the bound refused with 503, and 2000 silent sockets
from one address do not keep a well-behaved client from creating sessions."""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.gateway import SESSION_BODY, metric
from tests.support.processes import AUTH, MODULE_COMMAND, serving
from tests.support.raw_http import connect, parse_responses, read_until_closed
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

SILENT_SOCKETS = 2000
ATTACKER = "127.0.0.2"  # loopback too, but another address than the well-behaved client's


@pytest.fixture
def open_files_for_the_test() -> Iterator[None]:
    """This process holds the attacker's sockets: room for them, given back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SILENT_SOCKETS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard open-file limit ({hard}) is under {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def silent_sockets(stack: ExitStack, port: int, count: int) -> list[socket.socket]:
    return [stack.enter_context(connect(port, source=ATTACKER)) for _ in range(count)]


def all_closed_by_server(sockets: list[socket.socket], within_s: float) -> bool:
    """Whether every socket becomes readable within the time: for a socket that never sent a
    byte, and was never answered, that is the server's close."""
    deadline = time.monotonic() + within_s
    with selectors.DefaultSelector() as selector:  # epoll: fds past 1024, unlike select()
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                selector.unregister(key.fileobj)
        return not selector.get_map()


def test_the_open_file_limit_is_raised_to_the_hard_limit_at_start(
    tmp_path: Path, standin: StandIn
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip("the hard open-file limit leaves nothing to raise")
    command = ("prlimit", f"--nofile=1024:{hard}", *MODULE_COMMAND)
    with serving(tmp_path, standin, command=command) as gateway:
        gateway.stop()  # the log writer writes every 50 ms: start-up's lines are out once stopped
        messages = [line["message"] for line in gateway.log_lines()]

    assert any(m.startswith("open-file limit raised from 1024 to ") for m in messages), messages
    assert any(m.startswith("open-file limit ") and "bounded at" in m for m in messages)


async def test_connections_past_the_bound_get_503(tmp_path: Path, standin: StandIn) -> None:
    settings = {"VOICE_GATEWAY_MAX_CLIENT_CONNECTIONS": "20"}
    with serving(tmp_path, standin, **settings) as gateway, ExitStack() as stack:
        held = silent_sockets(stack, gateway.port, 20)
        with connect(gateway.port) as refused:
            refused.settimeout(5)
            (answer,) = parse_responses(read_until_closed(refused))
        for sock in held:
            sock.close()
        await anyio.sleep(0.5)  # the server sees the closes
        async with httpx.AsyncClient(base_url=gateway.base, headers=AUTH) as client:
            shed = await metric(client, 'voice_gateway_connections_shed_total{reason="connection')
        gateway.stop()

    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "overloaded"
    assert shed >= 1


@pytest.mark.usefixtures("open_files_for_the_test")
async def test_silent_sockets_do_not_stop_a_well_behaved_client(
    tmp_path: Path, standin: StandIn
) -> None:
    settings = {"VOICE_GATEWAY_HEADER_READ_TIMEOUT_S": "3"}
    with serving(tmp_path, standin, **settings) as gateway, ExitStack() as stack:
        silent = silent_sockets(stack, gateway.port, SILENT_SOCKETS)
        async with httpx.AsyncClient(base_url=gateway.base, headers=AUTH, timeout=10) as client:
            created = await client.post("/api/voice/session", json=SESSION_BODY)
            health = await client.get("/healthz")
            closed = all_closed_by_server(silent, within_s=60)
            timed_out = await metric(
                client, 'voice_gateway_connections_shed_total{reason="header_timeout"}'
            )
        gateway.stop()

    assert created.status_code == 201, created.text
    assert health.status_code == 200
    assert closed
    assert timed_out >= SILENT_SOCKETS

"""The gateway's listeners accept every connection waiting in the kernel's queue per wake-up;
uvloop's own servers accept one per poll (libuv#3696), which under load left new connections,
probes among them, waiting seconds. Run on uvloop, the loop `serve` runs on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from tests.cli.test_cli import livekit_env
from tests.support.cli import run_cli
from tests.support.keys import SERVICE_KEY
from voice_gateway.ops.listener import EagerListener, bind_listeners
from voice_gateway.standin import StandIn

WAITING = 200
LOOP_PASSES = 5


class Counted(asyncio.Protocol):
    opened: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.opened.append(transport)


Serve = Callable[[Callable[[], asyncio.Protocol]], Awaitable[tuple[int, Callable[[], None]]]]


def opened_after_a_few_passes(serve: Serve) -> int:
    """How many of WAITING connections, all made before the loop ran, are open after
    LOOP_PASSES passes of a uvloop loop serving them with `serve` (which gives the port and a
    stop)."""

    async def main() -> int:
        opened: list[asyncio.BaseTransport] = []
        protocol = type("Protocol", (Counted,), {"opened": opened})
        port, stop = await serve(protocol)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(WAITING)]
        for _ in range(LOOP_PASSES):
            await asyncio.sleep(0)
        count = len(opened)
        stop()
        for client in clients:
            client.close()
        await asyncio.sleep(0.05)  # what was accepted meanwhile opens, then all close
        for transport in opened:
            transport.close()
        await asyncio.sleep(0)
        return count

    return uvloop.run(main())


def test_every_waiting_connection_is_accepted_in_a_few_passes_of_the_loop() -> None:
    async def serve(protocol: Callable[[], asyncio.Protocol]) -> tuple[int, Callable[[], None]]:
        [sock] = bind_listeners("127.0.0.1", 0, WAITING * 2)
        listener = EagerListener(sock, protocol, asyncio.get_running_loop(), WAITING * 2)
        return int(sock.getsockname()[1]), listener.close

    assert opened_after_a_few_passes(serve) == WAITING


def test_uvloops_own_server_accepts_one_per_poll_which_is_why() -> None:
    """If this fails, uvloop accepts greedily again and ops/listener.py may be dropped."""

    async def serve(protocol: Callable[[], asyncio.Protocol]) -> tuple[int, Callable[[], None]]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", 0, backlog=WAITING * 2)
        return int(server.sockets[0].getsockname()[1]), server.close

    assert opened_after_a_few_passes(serve) <= LOOP_PASSES


def test_a_connection_that_cannot_be_opened_is_logged_and_the_next_is_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made: list[int] = []

    def protocol() -> asyncio.Protocol:
        made.append(1)
        if len(made) == 1:
            raise RuntimeError("no protocol for the first")
        return asyncio.Protocol()

    async def main() -> None:
        [sock] = bind_listeners("127.0.0.1", 0, 8)
        listener = EagerListener(sock, protocol, asyncio.get_running_loop(), 8)
        port = sock.getsockname()[1]
        first = socket.create_connection(("127.0.0.1", port))
        await asyncio.sleep(0.05)
        second = socket.create_connection(("127.0.0.1", port))
        await asyncio.sleep(0.05)
        listener.close()
        listener.close()  # twice: uvicorn's shutdown may, and nothing is left to close
        await listener.wait_closed()
        first.close()
        second.close()

    uvloop.run(main())

    assert len(made) == 2
    assert "an accepted connection could not be opened" in caplog.text


def test_an_ipv6_address_is_listened_on_alone() -> None:
    try:
        [listener] = bind_listeners("::1", 0, 8)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with listener:
        assert listener.family == socket.AF_INET6
        assert listener.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_every_address_a_host_names_is_listened_on() -> None:
    listeners = bind_listeners("localhost", 0, 8)
    try:
        families = {listener.family for listener in listeners}
        assert socket.AF_INET in families
        if socket.has_ipv6 and len(listeners) > 1:  # ::1 where the host has it
            assert socket.AF_INET6 in families
    finally:
        for listener in listeners:
            listener.close()


@pytest.mark.slow
def test_serve_on_a_port_already_taken_says_so_and_exits_3(
    tmp_path: Path, standin: StandIn
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        env = livekit_env(standin, VOICE_GATEWAY_API_KEYS=SERVICE_KEY)
        result = run_cli("serve", "--host", "127.0.0.1", "--port", port, env=env, cwd=tmp_path)

    assert result.returncode == 3
    assert f"could not listen on 127.0.0.1:{port}" in result.stderr

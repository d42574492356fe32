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

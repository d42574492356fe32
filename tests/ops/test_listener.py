"""The gateway's listeners accept every connection waiting in the kernel's queue per wake-up;
uvloop's own servers accept one per poll (libuv#3696), which under load left new connections,
probes among them, waiting seconds. Run on uvloop, the loop `serve` runs on."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.cli.test_cli import livekit_env
from tests.support.cli import run_cli
from tests.support.gateway import make_settings_for
from tests.support.keys import SERVICE_KEY
from tests.support.processes import free_port
from voice_gateway.ops.listener import ACCEPT_RETRY_S, EagerListener, bind_listeners
from voice_gateway.ops.server import STARTUP_FAILURE, serve_until_stopped
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


def test_more_waiting_than_one_wake_up_takes_are_accepted_on_the_next() -> None:
    async def main() -> int:
        opened: list[asyncio.BaseTransport] = []
        protocol = type("Protocol", (Counted,), {"opened": opened})
        [sock] = bind_listeners("127.0.0.1", 0, 8)
        listener = EagerListener(sock, protocol, asyncio.get_running_loop(), 2)
        clients = [socket.create_connection(sock.getsockname()) for _ in range(5)]
        for _ in range(LOOP_PASSES):
            await asyncio.sleep(0)
        listener.close()
        await listener.wait_closed()
        for client in clients:
            client.close()
        for transport in opened:
            transport.close()
        await asyncio.sleep(0)
        return len(opened)

    assert uvloop.run(main()) == 5


# Run in a process of its own: it leaves itself no free file descriptor for a moment, twice.
OUT_OF_DESCRIPTORS = """
import asyncio, json, logging, os, resource, socket
import uvloop
from voice_gateway.ops.listener import EagerListener, bind_listeners

warnings, loop_errors = [], []
handler = logging.Handler()
handler.emit = lambda record: warnings.append(record.getMessage())
logging.getLogger("voice_gateway.server").addHandler(handler)
RETRY_S = %(retry_s)s

async def out_of_descriptors_while(listener_address, then):
    client = socket.socket()  # its descriptor taken while there are some
    lowest_free = os.dup(0)
    os.close(lowest_free)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
    client.connect(listener_address)  # queued: accept() has no descriptor to give it
    await asyncio.sleep(0.3)
    then()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    await asyncio.sleep(RETRY_S + 0.5)
    return client

async def main():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: loop_errors.append(context["message"]))
    opened = []
    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            opened.append(transport)
    [sock] = bind_listeners("127.0.0.1", 0, 8)
    address = sock.getsockname()
    listener = EagerListener(sock, Protocol, loop, 8)
    seen = {}
    await out_of_descriptors_while(address, lambda: seen.update(out=[len(opened), len(warnings)]))
    seen["after"] = len(opened)
    # Closed while accepting waits (uvicorn's shutdown may come then): the retry finds it closed.
    await out_of_descriptors_while(address, listener.close)
    print(json.dumps(seen | {"warnings": warnings, "loop_errors": loop_errors}))

uvloop.run(main())
"""


def test_a_connection_accept_has_no_descriptor_for_waits_and_is_accepted_once_there_are() -> None:
    child = subprocess.run(  # noqa: S603
        [sys.executable, "-c", OUT_OF_DESCRIPTORS % {"retry_s": ACCEPT_RETRY_S}],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen: dict[str, Any] = json.loads(child.stdout)

    # One warning, not one per pass of the loop: the readable socket is left alone meanwhile.
    assert seen["out"] == [0, 1], seen
    assert "could not accept a connection: [Errno 24] Too many open files" in seen["warnings"][0]
    assert seen["after"] == 1, seen  # still listening: accepted once descriptors were free
    assert len(seen["warnings"]) == 2, seen  # the second time, closed while it waited
    assert seen["loop_errors"] == [], seen  # and its retry did not touch the closed socket


async def _lifespan_that_fails(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no LiveKit client for you"})


def test_serve_whose_app_fails_to_start_exits_3_without_listening(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    settings = make_settings_for("http://127.0.0.1:1")

    with pytest.raises(SystemExit) as exited:
        serve_until_stopped(lambda *_: _lifespan_that_fails, settings, "127.0.0.1", port)

    assert exited.value.code == STARTUP_FAILURE
    assert "no LiveKit client for you" in caplog.text
    assert "Application startup failed. Exiting." in caplog.text
    with pytest.raises(ConnectionRefusedError):  # it never bound the port
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

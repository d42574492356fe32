"""The other ways to run the stand-in: in the caller's loop, and as its own process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from livekit.api import CreateRoomRequest, LiveKitAPI

from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import StandIn


async def test_in_loop_mode_serves_in_the_callers_own_loop() -> None:
    async with StandIn(API_KEY, API_SECRET) as server:
        lk = LiveKitAPI(server.url, API_KEY, API_SECRET)
        try:
            room = await lk.room.create_room(CreateRoomRequest(name="r1"))
        finally:
            await lk.aclose()

    assert server.get_room("r1").sid == room.sid


def test_entry_point_says_it_is_a_stand_in_and_exits_cleanly_on_sigterm() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "voice_gateway.standin", "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            ready = _answers_ok(f"http://127.0.0.1:{port}/")
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=5)

    assert ready
    assert "STAND-IN" in banner
    assert "NOT a media server" in banner
    assert returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ok(url: str, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(url).text == "OK"
        except httpx.TransportError:
            time.sleep(0.05)
    return False


def test_starting_on_a_port_in_use_raises_and_leaves_nothing_running(standin: StandIn) -> None:
    second = StandIn(API_KEY, API_SECRET, port=standin.port)

    with pytest.raises(OSError):  # noqa: PT011  # EADDRINUSE, whose text varies by platform
        second.start()
    second.stop()  # a no-op after a failed start

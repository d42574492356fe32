"""A real `voice-gateway serve` process on a free loopback port, logging JSON to a file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.standin import StandIn

CALLER_KEY = "process-test-caller-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {CALLER_KEY}"}
MODULE_COMMAND = (sys.executable, "-m", "voice_gateway")


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def exit_code(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        """SIGINT (no drain delay) and wait: the process exits 0 and writes its coverage data,
        which the kill on the way out of `serving` would lose."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=20)


def bound_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to `port` (0: a free one), for a server in this process to listen on."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener


def free_port() -> int:
    """A port free now, for a server in another process (which binds it itself)."""
    with bound_listener() as probe:
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    tmp_path: Path,
    standin: StandIn,
    command: Sequence[str] = MODULE_COMMAND,
    **settings: str,
) -> Iterator[Gateway]:
    """`<command> serve` with the stand-in as LiveKit; killed on the way out if still running."""
    port = free_port()
    log_path = tmp_path / "gateway.log"
    serve = [*command, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            serve, env=_environment(standin, settings), cwd=tmp_path, stdout=log, stderr=log
        )
    gateway = Gateway(process, f"http://127.0.0.1:{port}", port, log_path)
    try:
        wait_until_serving(gateway.base, process, gateway.log_path.read_text)
        yield gateway
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _environment(standin: StandIn, settings: dict[str, str]) -> dict[str, str]:
    own = ("VOICE_GATEWAY_", "LIVEKIT_", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return env | {
        "LIVEKIT_URL": standin.url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "VOICE_GATEWAY_API_KEYS": CALLER_KEY,
        **settings,
    }


def wait_until_serving(
    base: str, process: subprocess.Popen[Any], output: Callable[[], str]
) -> None:
    """Until `base` answers /healthz; fails with the process's output if it died first."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, output()
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{base} never answered /healthz")

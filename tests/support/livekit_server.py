"""The real `livekit-server`, built by `make livekit-server` into .tools/bin/, started on free
loopback ports from a generated config (`--config-body`), stopped with its process group. Where
media must flow it runs inside a network namespace of the test's own (tests/support/netns.py).

Outside CI a missing binary skips the real-server tests with one line saying how to build it; in
CI (CI=true) it fails them: the real tier must run there.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.keys import API_KEY, API_SECRET
from tests.support.netns import Namespace
from tests.support.processes import free_port
from tests.support.repo_files import ROOT

BINARY = ROOT / ".tools" / "bin" / "livekit-server"
LOOPBACK = "127.0.0.1"
UDP_PORTS = 10  # a few participants need no more
NAMESPACE_FIRST_UDP = 50_000  # nothing else listens in a namespace the test made
# A port free when picked may be some client's ephemeral port by the time the server binds it
# (fresh CI at ec665f4: "bind: address already in use"): a new set of ports, a few times.
START_ATTEMPTS = 3


@dataclass(frozen=True)
class LiveKitServer:
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def require_binary() -> Path:
    if BINARY.exists():
        return BINARY
    message = f"no {BINARY.relative_to(ROOT)}: `make livekit-server` builds it (needs Go >= 1.26)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def livekit_server(
    log_dir: Path,
    webhook_urls: Sequence[str] = (),
    room: dict[str, Any] | None = None,
    namespace: Namespace | None = None,
) -> Iterator[LiveKitServer]:
    """The real server, ready (`GET /` answers 200), with the tests' key pair: on 127.0.0.1, or
    on the inner address of `namespace` (where WebRTC clients outside it can reach it)."""
    host = namespace.inner_address if namespace else LOOPBACK
    for attempt in range(1, START_ATTEMPTS + 1):
        server = LiveKitServer(host, free_port(), log_dir / "livekit-server.log")
        udp_range = _free_udp_range() if namespace is None else _namespace_udp_range()
        config = _config(server, udp_range, webhook_urls, room or {})
        log_start = server.log_path.stat().st_size if server.log_path.exists() else 0
        process = _start(server, config, namespace)
        try:
            _wait_until_ready(server, process, log_start)
            break
        except PortTaken:
            if attempt == START_ATTEMPTS:
                raise
        except BaseException:
            _stop(process)
            raise
    try:
        yield server
    finally:
        _stop(process)


def _start(
    server: LiveKitServer, config: dict[str, Any], namespace: Namespace | None
) -> subprocess.Popen[bytes]:
    command = [str(require_binary()), "--config-body", yaml.safe_dump(config)]
    with server.log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            namespace.command(command) if namespace else command,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _config(
    server: LiveKitServer,
    udp_range: tuple[int, int],
    webhook_urls: Sequence[str],
    room: dict[str, Any],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "port": server.port,
        "bind_addresses": [server.host],
        "rtc": {
            "tcp_port": free_port(),
            "port_range_start": udp_range[0],
            "port_range_end": udp_range[1],
            "use_external_ip": False,
            "node_ip": server.host,  # also keeps the server from adding public STUN servers
        },
        "keys": {API_KEY: API_SECRET},
        "logging": {"level": "info", "json": False},
        "room": room,
    }
    if webhook_urls:
        config["webhook"] = {"api_key": API_KEY, "urls": list(webhook_urls)}
    return config


def _free_udp_range() -> tuple[int, int]:
    for _ in range(50):
        first = random.randint(40000, 59000)  # a port, not a secret
        if all(_udp_free(port) for port in range(first, first + UDP_PORTS)):
            return first, first + UDP_PORTS - 1
    raise RuntimeError("no free UDP port range on 127.0.0.1")


def _namespace_udp_range() -> tuple[int, int]:
    return NAMESPACE_FIRST_UDP, NAMESPACE_FIRST_UDP + UDP_PORTS - 1


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


class PortTaken(AssertionError):
    """The server exited because a port picked for it was taken before it could bind it."""


def _wait_until_ready(
    server: LiveKitServer, process: subprocess.Popen[bytes], log_start: int
) -> None:
    """`log_start`: where this start's lines begin in a log that earlier starts wrote too."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with server.log_path.open("rb") as log:
                log.seek(log_start)
                written = log.read().decode(errors="replace")[-4000:]
            if "address already in use" in written:
                raise PortTaken(written)
            raise AssertionError(written)
        try:
            if httpx.get(server.url + "/", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"livekit-server never answered GET / at {server.url}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        # It waits for undelivered webhooks (to a gateway no longer serving) before it exits:
        # nothing of a test server is worth that wait.
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)

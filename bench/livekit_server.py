"""The real `livekit-server` behind the gateway: the binary `make livekit-server` builds into
.tools/bin/ (version: the Makefile's LIVEKIT_VERSION), started from a generated config
(`--config-body`) on free loopback ports, with the run's key pair, and stopped with its process
group. It listens on 127.0.0.1 in our own network namespace: enough for the API, and for WebRTC
too (bench.agent_wait's agent), since the server's checks go to a client's non-loopback host
candidate, which the kernel delivers locally (docs/livekit-observed.md, "First result").
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from .children import HOST, REPO_ROOT, Child, Children, StartFailure, free_port, wait_until_ready

BINARY = REPO_ROOT / ".tools" / "bin" / "livekit-server"
BUILD_HINT = "`make livekit-server` builds it (needs Go >= 1.26)"
STARTUP_TIMEOUT_S = 20.0
# It waits for undelivered webhooks before it exits; a benchmark's server has none worth a wait.
STOP_GRACE_S = 2.0
UDP_PORTS = 10  # rtc needs a range even when no participant ever connects
LOG_LEVEL = "info"  # the server's default: one line per API call, as in production


def missing_binary() -> str | None:
    """Why the real server cannot run here, in one line; None when it can."""
    if BINARY.is_file():
        return None
    return f"no {BINARY.relative_to(REPO_ROOT)}: {BUILD_HINT}"


def start_livekit_server(
    children: Children,
    name: str,
    env: Mapping[str, str],
    api_key: str,
    api_secret: str,
    *,
    webhook_urls: Sequence[str] = (),
    udp_ports: int = UDP_PORTS,
) -> tuple[Child, str]:
    """The server, ready (`GET /` answers 200), and its URL; webhooks (signed with `api_key`) to
    `webhook_urls`, none by default."""
    if why := missing_binary():
        raise StartFailure(why)
    port = free_port()
    config = server_config(port, free_port(), free_udp_range(udp_ports), api_key, api_secret)
    if webhook_urls:
        config["webhook"] = {"api_key": api_key, "urls": list(webhook_urls)}
    body = json.dumps(config)
    # JSON is YAML: the server reads the body as its YAML config file.
    server = children.start(
        name, [str(BINARY), "--config-body", body], env, stop_grace_s=STOP_GRACE_S
    )
    url = f"http://{HOST}:{port}"
    wait_until_ready(server, url + "/", STARTUP_TIMEOUT_S)
    return server, url


def server_config(
    port: int, tcp_port: int, udp_range: tuple[int, int], api_key: str, api_secret: str
) -> dict[str, Any]:
    return {
        "port": port,
        "bind_addresses": [HOST],
        "rtc": {
            "tcp_port": tcp_port,
            "port_range_start": udp_range[0],
            "port_range_end": udp_range[1],
            "use_external_ip": False,
            "node_ip": HOST,  # also keeps the server from adding public STUN servers
        },
        "keys": {api_key: api_secret},
        "logging": {"level": LOG_LEVEL, "json": False},
    }


def free_udp_range(ports: int = UDP_PORTS) -> tuple[int, int]:
    for _ in range(50):
        first = random.randint(40000, 59000)  # a port, not a secret
        if all(_udp_free(port) for port in range(first, first + ports)):
            return first, first + ports - 1
    raise StartFailure(f"no {ports} free UDP ports in a row on {HOST}")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True

"""`make run-livekit`'s stack (examples/run_livekit.py): up with its three processes, a session
created through the gateway it prints, the agent sent into it, and everything stopped on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.livekit_server import require_binary
from tests.support.processes import free_port
from tests.support.repo_files import ROOT

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "examples" / "run_livekit.py"


def test_the_stack_starts_serves_a_session_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    require_binary()
    gateway_port, livekit_port = free_port(), _free_port_run(12)
    output = tmp_path / "run-livekit.out"
    env = {"RUN_LIVEKIT_PORT": str(livekit_port), "RUN_LIVEKIT_GATEWAY_PORT": str(gateway_port)}
    with output.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(SCRIPT)], env=_env(env), stdout=out, stderr=out
        )
    try:
        banner = _wait_for_banner(output, process)
        key = re.search(r"Bearer (\S+)'", banner)
        assert key is not None, banner
        created = httpx.post(
            f"http://127.0.0.1:{gateway_port}/api/voice/session",
            json={"user_id": "me", "agent_id": "example-agent"},
            headers={"Authorization": f"Bearer {key.group(1)}"},
            timeout=10,
        )
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert created.status_code == 201, created.text
    assert created.json()["livekit_url"] == f"ws://127.0.0.1:{livekit_port}"
    assert exit_code == 0
    assert "stopping the agent, the gateway and LiveKit" in output.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{gateway_port}/healthz", timeout=1)


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")} | extra


def _wait_for_banner(output: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if "Ctrl-C stops all three" in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.1)
    raise AssertionError(output.read_text(errors="replace"))


def _free_port_run(length: int) -> int:
    """A first port with `length` free TCP ports after it (LiveKit's API, RTC TCP, UDP)."""
    for _ in range(50):
        first = free_port()
        if first + length < 65_000 and all(_tcp_free(p) for p in range(first, first + length)):
            return first
    raise RuntimeError("no run of free ports")


def _tcp_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

"""The example agent (examples/agent/agent.py) as a real LiveKit Agents worker process, registered
with the real server under an agent name of the test's; its log is where the tests read what the
agent saw."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.keys import API_KEY, API_SECRET
from tests.support.repo_files import ROOT

AGENT = ROOT / "examples" / "agent" / "agent.py"
# The SDK reads these too, and some beat what the worker is given (an override of the agent name,
# a worker token, a proxy): a developer's shell must not change what the tests dispatch.
INHERITED_PREFIXES = ("LIVEKIT_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


@dataclass(frozen=True)
class AgentWorker:
    name: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL to the worker and its job processes at once: a crash, no goodbye to LiveKit."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout_s: float, after: int = 0) -> float:
        """Seconds until `text` appears in the log past character `after`."""
        started = time.monotonic()
        while text not in self.log()[after:]:
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"agent never logged {text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.02)
        return time.monotonic() - started


@contextmanager
def agent_worker(ws_url: str, name: str, log_dir: Path) -> Iterator[AgentWorker]:
    """The worker, started and registered (jobs dispatched before registration are dropped)."""
    log_path = log_dir / f"agent-{name}.log"
    command = [sys.executable, "-m", "livekit.agents", "start", str(AGENT)]
    command += ["--url", ws_url, "--api-key", API_KEY, "--api-secret", API_SECRET]
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [*command, "--log-level", "INFO"],
            env=_environment(name),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    worker = AgentWorker(name, log_path, process)
    try:
        _wait_until_registered(worker, process)
        yield worker
    finally:
        _stop(process)


def _environment(name: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
    # Coverage measures the gateway, not the example: its child processes need no tracer.
    kept = {k: v for k, v in kept.items() if not k.startswith("COVERAGE_")}
    return kept | {"LIVEKIT_AGENT_NAME": name, "PYTHONUNBUFFERED": "1"}


def _wait_until_registered(worker: AgentWorker, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a cold import of the SDK takes a few seconds
    while "registered worker" not in worker.log():
        assert process.poll() is None, f"the agent worker exited:\n{worker.log()[-3000:]}"
        assert time.monotonic() < deadline, f"the agent never registered:\n{worker.log()[-3000:]}"
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # SIGTERM to the main process only: it drains and stops its job processes itself; a signal
    # to the whole group would hit the forkserver and the jobs mid-shutdown.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)

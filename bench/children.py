"""Child processes of a benchmark: started in their own sessions, always stopped on the way out."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

HOST = "127.0.0.1"  # every child listens here, and only here
REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 5.0
LOG_TAIL_CHARS = 2000
# Routine lines, left out of log tails: thousands per run would bury the one that explains a
# failure. Access lines of 2xx answers: JSON ones from the gateway and the ceiling
# (voice_gateway.access), uvicorn's own from the stand-in; and every INFO line of the real
# livekit-server, five per room (its API call, the agent dispatch, closing): its warnings and
# errors stay.
ROUTINE_LINE = re.compile(
    r'"logger": "voice_gateway\.access".*"status": 2\d\d\b|HTTP/[\d.]+" 2\d\d |^\S+\tINFO\t'
)


# The processes a run measures: with `pin_servers_apart`, alone on a CPU of their own.
SERVERS_UNDER_TEST = ("-gateway", "-baseline", "-ceiling")
_server_cpus: set[int] = set()


def pin_servers_apart() -> str:
    """The server under test on the first CPU this process may use, and this process (so wrk,
    the stand-ins, the real server and the probes, which inherit it) on the others: on a small
    machine the load generator otherwise takes the gateway's core from it for a scheduler slice
    at a time, which the gateway's loop-lag monitor reads as its own lag. What it says it did."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "--pin: one CPU only, nothing pinned"
    _server_cpus.clear()
    _server_cpus.add(cpus[0])
    os.sched_setaffinity(0, set(cpus[1:]))
    return f"pinned: the server under test on CPU {cpus[0]}, the rest on {cpus[1:]}"


class StartFailure(Exception):
    """A child did not come up: it exited, or never answered its readiness probe in time."""


@dataclass(frozen=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop_grace_s: float = STOP_GRACE_S  # after SIGTERM, before SIGKILL

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        """The end of the child's output, without the access-log lines of successful requests."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        telling = [line for line in lines if not ROUTINE_LINE.search(line)]
        return "\n".join(telling)[-LOG_TAIL_CHARS:]


class Children(AbstractContextManager["Children"]):
    """Owns the processes it starts; leaving the block stops every one, errors or not."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir  # every child's working directory, and where its log goes
        self._children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        stop_grace_s: float = STOP_GRACE_S,
    ) -> Child:
        log_path = self.work_dir / f"{name}.log"
        with log_path.open("wb") as log:
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=self.work_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if _server_cpus and name.endswith(SERVERS_UNDER_TEST):
            # At once, before the interpreter is up and has started a thread (each inherits it).
            os.sched_setaffinity(process.pid, _server_cpus)
        child = Child(name, process, log_path, stop_grace_s)
        self._children.append(child)
        return child

    def log_tails(self) -> str:
        """The end of every child's output, to explain a failure before the logs are gone."""
        return "\n".join(f"--- {c.name} (pid {c.pid}) ---\n{c.log_tail()}" for c in self._children)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A second Ctrl-C must not cut the clean-up short; it is delivered once we are done.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for child in reversed(self._children):
                stop(child)
            self._children.clear()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def stop(child: Child) -> None:
    """SIGTERM (uvicorn shuts down cleanly), then SIGKILL after the child's grace period."""
    if child.process.poll() is not None:
        return
    _signal_group(child, signal.SIGTERM)
    try:
        child.process.wait(child.stop_grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        child.process.wait(STOP_GRACE_S)


def _signal_group(child: Child, signum: signal.Signals) -> None:
    # The group is the child's own (start_new_session), so this reaches only what we started.
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until_ready(child: Child, url: str, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail early if the child exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartFailure(f"{child.name} exited with status {child.process.returncode}")
            if _answers_ok(client, url):
                return
            time.sleep(0.01)  # start-up is measured: poll finely
    raise StartFailure(f"{child.name} did not answer {url} within {timeout_s:g} s")


def _answers_ok(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a live process has used, from /proc (None off Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: field 14 (utime) and 15 (stime) are at offsets 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

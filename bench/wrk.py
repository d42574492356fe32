"""`wrk`: find (or, where allowed, install) it, run it with our Lua script, read its summary."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("post_session.lua")
RESULT_MARKER = "BENCH_RESULT "
# Unanswered this long is a hang, not a slow answer: the gateway's LiveKit deadline is 5 s.
REQUEST_TIMEOUT_S = 10
APT_TIMEOUT_S = 300
INSTALL_HINT = "install it (Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk)"


class WrkUnavailable(Exception):
    """wrk is missing and may not be installed from here, or wrk itself failed."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    timeouts: int
    cpu_s: float
    # Of the non-2xx answers (post_session.lua counts them; 0 from scripts that do not).
    status_500: int = 0
    status_503: int = 0
    status_504: int = 0

    @property
    def sessions_per_s(self) -> float:
        """Answered 2xx per second: a non-2xx answer is no session."""
        return (self.requests - self.non_2xx) / self.duration_s if self.duration_s else 0.0


def ensure_wrk() -> str:
    """The path of wrk; installs it with apt-get only as root and without a terminal (CI)."""
    if path := shutil.which("wrk"):
        return path
    if os.geteuid() == 0 and not sys.stdin.isatty() and shutil.which("apt-get"):
        print("wrk is missing; installing it with apt-get", file=sys.stderr)
        _apt_install_wrk()
        if path := shutil.which("wrk"):
            return path
    raise WrkUnavailable(f"wrk is not installed; {INSTALL_HINT}, then run this again.")


def _apt_install_wrk() -> None:
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if _apt(install):
        return
    # The package lists may be absent (slim images): refresh them once, only when needed.
    _apt(["apt-get", "update"])
    _apt(install)


def _apt(argv: list[str]) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=APT_TIMEOUT_S, check=False)
    return done.returncode == 0


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    threads: int,
    duration_s: int,
    api_key: str,
    script: Path = SCRIPT,
) -> WrkResult:
    """`script` makes the requests and prints the summary line; the default POSTs sessions."""
    argv = [
        wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s", "--latency", "-s", str(script),
        "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {api_key}", url,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise WrkUnavailable(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_result(done.stdout, cpu_s)


def parse_result(output: str, cpu_s: float) -> WrkResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_MARKER)), None)
    if line is None:
        raise WrkUnavailable(f"wrk printed no summary:\n{output[-1000:]}")
    raw = json.loads(line.removeprefix(RESULT_MARKER))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        non_2xx=raw["non_2xx"],
        socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"],
        timeouts=raw["timeouts"],
        cpu_s=cpu_s,
        status_500=raw.get("s500", 0),
        status_503=raw.get("s503", 0),
        status_504=raw.get("s504", 0),
    )

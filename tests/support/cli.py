"""The `voice-gateway` command run as a person runs it: a real process, a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import wait_until_serving


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_GATEWAY_", "LIVEKIT_"))}
    return env | extra


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voice_gateway", *args]
    return subprocess.run(  # noqa: S603
        command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@contextmanager
def running(
    *args: str, env: Mapping[str, str], cwd: Path, port: int, output: list[str] | None = None
) -> Iterator[str]:
    """The command serving on `port` for the block; its output is appended to `output`."""
    command = [sys.executable, "-m", "voice_gateway", *args]
    process = subprocess.Popen(  # noqa: S603
        command, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, lambda: process.stdout.read() if process.stdout else "")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        printed, _ = process.communicate(timeout=15)  # reaps it and closes its pipe
        if output is not None:
            output.append(printed)

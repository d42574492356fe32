"""A real redis-server for tests, on a free loopback port, started and stopped by the suite (and
by a test that restarts it).

`make test` installs redis-server where it may (root, no terminal: CI); elsewhere the tests that
need it are skipped with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MISSING = (
    "redis-server is not installed (make test installs it as root; or apt-get install redis-server)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server on a fixed port; `persistent`: with an append-only file (`appendonly yes`,
    fsync every write), so a restart keeps its data, as production's must (docs/operations.md)."""

    def __init__(self, work_dir: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip(MISSING)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else []
        self._argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", *persistence, "--dir", str(work_dir)]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = process = subprocess.Popen(  # noqa: S603
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            assert process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer PING in 10 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


@contextmanager
def redis_server(work_dir: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """A fresh server that lives for the block (unless the test stops it)."""
    server = RedisServer(work_dir, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""The tests' real server starts even when a port picked for it is taken before it binds it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import livekit_server as module
from tests.support.processes import free_port

pytestmark = pytest.mark.slow


def test_a_port_taken_before_the_server_binds_it_gets_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken_port = taken.getsockname()[1]
        ports: Iterator[int] = iter([taken_port])
        monkeypatch.setattr(module, "free_port", lambda: next(ports, None) or free_port())

        with module.livekit_server(tmp_path) as server:
            assert server.port != taken_port
            assert httpx.get(server.url + "/", timeout=2).status_code == 200
    assert "address already in use" in server.log_path.read_text()

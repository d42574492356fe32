"""uvicorn glue: the stand-in's server settings, and one server on one socket in a running loop."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from .app import create_standin_app
from .state import StandInState

STARTUP_POLL_S = 0.005
RELEASE_POLL_S = 0.05
# Bounds a stop when a client holds a connection open mid-request; hung calls end sooner.
GRACEFUL_SHUTDOWN_S = 2.0


def standin_config(
    state: StandInState, host: str = "127.0.0.1", port: int = 7880, **overrides: Any
) -> uvicorn.Config:
    """uvicorn settings for the stand-in: no access log, no `server` header (LiveKit sends
    none), no WebSocket support (there is no `/rtc`). Pass `log_config`/`log_level` to change
    how uvicorn treats logging; by default it leaves the process's logging alone."""
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "server_header": False,
        "ws": "none",
        "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "log_config": None,
        "log_level": None,
    }
    return uvicorn.Config(create_standin_app(state), **(settings | overrides))


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound socket (not yet listening); SO_REUSEADDR so a restart can take the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """One uvicorn server listening on one socket, driven from the loop it runs in."""

    def __init__(self, config: uvicorn.Config, state: StandInState) -> None:
        self._server = uvicorn.Server(config)
        self._state = state
        self._task: asyncio.Task[None] | None = None

    async def open(self, sock: socket.socket) -> None:
        """Returns once the server accepts connections on `sock`."""
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises whatever stopped the start-up
                raise RuntimeError("the LiveKit stand-in stopped while starting")
            await asyncio.sleep(STARTUP_POLL_S)

    async def close(self) -> None:
        """Stops listening, ends hung calls, waits for the server to finish."""
        if self._task is None:
            return
        self._server.should_exit = True
        # Calls can still arrive on open connections until uvicorn's next tick, so keep
        # releasing hung ones until the server is done.
        while not self._task.done():
            self._state.faults.release_hung_calls()
            await asyncio.wait({self._task}, timeout=RELEASE_POLL_S)
        task, self._task = self._task, None
        task.result()

"""The drain: from SIGTERM until the process stops, the gateway keeps serving but says it is
leaving, so load balancers move traffic elsewhere before its listener closes."""

from __future__ import annotations


class Drain:
    """Shared by the server (which starts it on a signal) and the app (which reports it)."""

    def __init__(self) -> None:
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        self._started = True

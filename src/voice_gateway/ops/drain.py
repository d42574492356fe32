"""The drain: from SIGTERM until the process stops, the gateway keeps serving but says it is
leaving, so load balancers move traffic elsewhere before its listener closes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class Drain:
    """Shared by the server (which starts it on a signal) and the app (which reports it)."""

    def __init__(self) -> None:
        self._started_at: float | None = None
        self._hurried = False
        self._graces: set[anyio.CancelScope] = set()  # waits that hurry() cuts short

    @property
    def started(self) -> bool:
        return self._started_at is not None

    def start(self) -> None:
        if self._started_at is None:
            self._started_at = time.monotonic()

    def hurry(self) -> None:
        """Stop now (a second signal): no grace is left for anything waiting in `within_grace`,
        from now or already."""
        self.start()
        self._hurried = True
        for grace in list(self._graces):
            grace.cancel()

    @contextmanager
    def within_grace(self, grace_s: float) -> Iterator[None]:
        """Its block runs for at most what is left of the grace, and no longer once hurried."""
        with anyio.move_on_after(self.seconds_left(grace_s)) as grace:
            self._graces.add(grace)
            try:
                yield
            finally:
                self._graces.discard(grace)

    def seconds_left(self, grace_s: float) -> float:
        """What is left of the shutdown grace: all of it while no drain has started (a
        lifespan stopped without a signal, as in tests), none once hurried."""
        if self._hurried:
            return 0.0
        if self._started_at is None:
            return grace_s
        return max(0.0, self._started_at + grace_s - time.monotonic())

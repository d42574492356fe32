"""Faults a test can inject into Twirp calls: latency, error answers, and calls that never end.

Set from any thread, read on the server loop; plain attribute reads and writes are atomic, and
the one read-modify-write (counting down a failure) takes the lock.
"""

from __future__ import annotations

import asyncio
import threading

from .twirp import TwirpError

HANG_POLL_S = 0.02  # how soon a hung call notices it was released; polling works across threads


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_s = 0.0
        self.latency_after = False  # delay the answer, not the work: a late answer to a done call
        self.hanging = False
        self._failure: TwirpError | None = None
        self._failures_left: int | None = None
        self._release_epoch = 0

    def set_latency(self, seconds: float, *, after: bool = False) -> None:
        with self._lock:
            self.latency_s, self.latency_after = seconds, after

    def fail_next(self, error: TwirpError, times: int | None = None) -> None:
        """Answer the next `times` calls (every call while None) with `error`."""
        with self._lock:
            if times is not None and times <= 0:
                self._failure, self._failures_left = None, None
            else:
                self._failure, self._failures_left = error, times

    def clear(self) -> None:
        with self._lock:
            self.latency_s, self.latency_after, self.hanging = 0.0, False, False
            self._failure, self._failures_left = None, None

    def release_hung_calls(self) -> None:
        """Ends calls hung right now (they answer 503); later calls still hang if `hanging`."""
        self._release_epoch += 1

    async def before_call(self) -> TwirpError | None:
        """Waits as the faults say, then returns the error to answer instead, if any."""
        if self.hanging and await self._hang():
            return TwirpError("unavailable", "LiveKit stand-in stopped while the call hung")
        if self.latency_s > 0 and not self.latency_after:
            await asyncio.sleep(self.latency_s)
        return self._take_failure()

    async def after_call(self) -> None:
        """Waits before the answer goes out, when latency is set to come after the work."""
        if self.latency_s > 0 and self.latency_after:
            await asyncio.sleep(self.latency_s)

    async def _hang(self) -> bool:
        """True when released by a stop rather than by clearing the hang."""
        epoch = self._release_epoch
        # Polled rather than an asyncio.Event: hooks run on other threads and loops.
        while self.hanging and epoch == self._release_epoch:  # noqa: ASYNC110
            await asyncio.sleep(HANG_POLL_S)
        return epoch != self._release_epoch

    def _take_failure(self) -> TwirpError | None:
        if self._failure is None:  # the common case answers without the lock
            return None
        with self._lock:
            failure = self._failure
            if self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self._failure, self._failures_left = None, None
            return failure

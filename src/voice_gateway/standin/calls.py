"""A record of the Twirp calls the stand-in received, for tests to assert on."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass

from .auth import Grants

KEPT_CALLS = 10_000  # enough for any test; bounded so a benchmark cannot grow it forever


@dataclass
class TwirpCall:
    """One request to a `/twirp/` path, recorded when it arrives.

    `grants` is None when the request carried no valid token; `status` and `code` (the Twirp
    error code, None on success) are filled in when it is answered, so None while in flight.
    """

    method: str
    path: str
    grants: Grants | None = None
    status: int | None = None
    code: str | None = None


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._calls: deque[TwirpCall] = deque(maxlen=KEPT_CALLS)

    def begin(self, path: str) -> TwirpCall:
        call = TwirpCall(method=path.rpartition("/")[2], path=path)
        with self._lock:
            self._counts[call.method] += 1
            self._calls.append(call)
        return call

    def count(self, method: str) -> int:
        with self._lock:
            return self._counts[method]

    def calls(self, method: str | None = None) -> list[TwirpCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._calls.clear()

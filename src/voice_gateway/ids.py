"""Cryptographically random ids, from OS randomness read a page at a time.

Every `os.urandom` call (behind `secrets` and `uuid.uuid4`) releases the GIL; on the event loop,
getting it back from the token-signing threads cost about a tenth of the loop's time per call
site under load. These are the same CSPRNG bytes, fetched 4 KiB per syscall instead of 16 bytes.
"""

from __future__ import annotations

import base64
import os
import threading
import uuid

PAGE_BYTES = 4096


class _EntropyPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._page, self._offset = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._offset + count > len(self._page):
                self._page, self._offset = os.urandom(max(PAGE_BYTES, count)), 0
            start, self._offset = self._offset, self._offset + count
            return self._page[start : self._offset]


_pool = _EntropyPool()
# A forked child must never hand out the bytes its parent already used.
os.register_at_fork(after_in_child=_pool.reset)


def token_urlsafe(nbytes: int) -> str:
    """As `secrets.token_urlsafe`."""
    return base64.urlsafe_b64encode(_pool.take(nbytes)).rstrip(b"=").decode("ascii")


def uuid4() -> uuid.UUID:
    """As `uuid.uuid4`."""
    return uuid.UUID(bytes=_pool.take(16), version=4)

"""Every id the gateway generates, and why each takes its randomness where it does.

- Session ids, token-session ids, join-token ids (`jti`), idempotency-claim nonces and the
  identities the token endpoint makes up are unguessable on purpose: they name rooms and tokens a
  caller must not predict. They come from the OS CSPRNG, read a page at a time (`_EntropyPool`):
  every `os.urandom` call (behind `secrets` and `uuid.uuid4`) releases the GIL, and on the event
  loop getting it back from the token-signing threads was measurable per call site (see
  bench/README.md, measured decisions).
- Request ids only need to be unique, not secret: they come from `random`, seeded from the OS
  once, which costs no syscall at all.

Ids derived rather than generated (a session id from an Idempotency-Key) are made where their
derivation is explained: `sessions/idempotency.py`.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import uuid

from .vocabulary import SESSION_ID_PREFIX

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
_request_ids = random.Random()  # seeded from the OS once, at import  # noqa: S311


def token_urlsafe(nbytes: int) -> str:
    """As `secrets.token_urlsafe`."""
    return base64.urlsafe_b64encode(_pool.take(nbytes)).rstrip(b"=").decode("ascii")


def uuid4() -> uuid.UUID:
    """As `uuid.uuid4`."""
    return uuid.UUID(bytes=_pool.take(16), version=4)


def new_session_id() -> str:
    """`sess_` and 128 random bits: 22 URL-safe characters."""
    return SESSION_ID_PREFIX + token_urlsafe(16)


def new_token_session_id() -> str:
    """A canonical UUID: the token endpoint's room names are `{prefix}_{uuid}`."""
    return str(uuid4())


def new_identity() -> str:
    """For a token-endpoint caller trusted to name nobody: a participant of its own."""
    return str(uuid4())


def new_token_id() -> str:
    """A join token's `jti`: two tokens for the same grant in the same second still differ."""
    return token_urlsafe(16)


def new_claim_nonce() -> str:
    """Tells the replica whose CreateRoom made an idempotency claim from those that found it."""
    return token_urlsafe(12)


def new_request_id() -> str:
    """128 random bits as 32 hex digits, like a uuid4, but from `random`: a correlation id needs
    uniqueness, not secrecy."""
    return f"{_request_ids.getrandbits(128):032x}"

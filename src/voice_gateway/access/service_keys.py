"""Service keys: shared secrets for trusted backends, held only as SHA-256 digests.

An entry of `VOICE_GATEWAY_API_KEYS` is either the key itself or `sha256:<hex>` of it, so a
deployment can keep the plain key out of the gateway's environment entirely. A presented key is
hashed and compared with every digest in constant time, without stopping at a match, so neither
which key matched nor how much of it did shows in the time taken.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

HASHED_PREFIX = "sha256:"


class ServiceKeys:
    def __init__(self, entries: Sequence[SecretStr]) -> None:
        self._digests = [digest_of_entry(entry.get_secret_value()) for entry in entries]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def match(self, presented: str) -> str | None:
        """The id of the key presented (a digest prefix, safe to log), or None."""
        offered = hashlib.sha256(presented.encode()).digest()
        matched: bytes | None = None
        for digest in self._digests:
            if hmac.compare_digest(digest, offered):
                matched = digest
        return key_id(matched) if matched else None


def digest_of_entry(entry: str) -> bytes:
    if entry.startswith(HASHED_PREFIX):
        return bytes.fromhex(entry.removeprefix(HASHED_PREFIX))
    return hashlib.sha256(entry.encode()).digest()


def key_id(digest: bytes) -> str:
    # 48 bits of a digest of a high-entropy key: tells keys apart in logs and rate-limit counters
    # and reveals nothing usable about the key.
    return "key-" + digest.hex()[:12]

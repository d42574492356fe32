"""LiveKit-style identifiers: a prefix plus 12 characters of the shortuuid (base57) alphabet."""

from __future__ import annotations

import secrets

# shortuuid's alphabet: digits and letters without the look-alikes 0, 1, I, O and l.
BASE57 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ROOM_PREFIX = "RM_"
PARTICIPANT_PREFIX = "PA_"


def random_base57(length: int) -> str:
    return "".join(secrets.choice(BASE57) for _ in range(length))


def new_guid(prefix: str) -> str:
    """An id shaped like the server's `guid.New(prefix)`, e.g. `RM_tkqSD8FiAnd3`."""
    return prefix + random_base57(12)

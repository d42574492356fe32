"""LiveKit-style identifiers: a prefix plus 12 characters of the shortuuid (base57) alphabet."""

from __future__ import annotations

import random

# shortuuid's alphabet: digits and letters without the look-alikes 0, 1, I, O and l.
BASE57 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ROOM_PREFIX = "RM_"
PARTICIPANT_PREFIX = "PA_"


# Not secrets (the server's are not either: room and participant sids are shown to every
# client), so not a system call per character: that was a seventh of a stand-in call's CPU.
_random = random.Random()  # noqa: S311 - ids anyone may see, never keys


def random_base57(length: int) -> str:
    return "".join(_random.choices(BASE57, k=length))


def new_guid(prefix: str) -> str:
    """An id shaped like the server's `guid.New(prefix)`, e.g. `RM_tkqSD8FiAnd3`."""
    return prefix + random_base57(12)

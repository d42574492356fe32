"""The dead letters in Redis (the `dead` stream of event_queue_redis.py), for an operator: listed,
and sent again (`voice-gateway events dead` and `events resend`: cli_events.py).

Resending puts a dead letter back into its session's partition as it was (same event, same
`webhook-id`, same body), with a fresh `queued_at`, so it has a whole
`VOICE_GATEWAY_EVENTS_RETRY_FOR_S` again, and removes it from `dead`, both in one script: two
operators resending at once send it once. It bypasses the `seen` set on purpose: that an event
was queued before is the point.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import cast

import coredis

from .event_queue import Delivery
from .event_queue_redis import EventKeys, decode, encode, fields_of

PAGE = 1000  # dead entries read per call

# KEYS: dead, stream. ARGV: dead entry id, then the entry's fields. Returns 1 if re-queued.
_RESEND = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the dead stream's entry id: what `events resend` takes
    delivery: Delivery
    error: str
    attempts: int


class DeadLetters:
    def __init__(self, client: coredis.Redis[str], prefix: str) -> None:
        self._client = client
        self._keys = EventKeys(prefix)
        self._resend = client.register_script(_RESEND)

    async def all(self) -> AsyncIterator[DeadLetter]:
        """Oldest first, a page per call to Redis."""
        start = "-"
        while True:
            entries = await self._client.xrange(self._keys.dead, start, "+", count=PAGE)
            for entry in entries:
                fields = fields_of(entry)
                attempts = int(fields.get("attempts", "0"))
                yield DeadLetter(str(entry.identifier), decode(fields), fields["error"], attempts)
            if len(entries) < PAGE:
                return
            start = "(" + str(entries[-1].identifier)

    async def resend(self, letters: Iterable[DeadLetter]) -> int:
        """Back into the queue; how many were (one already resent by someone else is not)."""
        resent = 0
        for letter in letters:
            fields = encode(Delivery(letter.delivery.event, letter.delivery.url, time.time()))
            args = [letter.id, *(part for pair in fields.items() for part in pair)]
            stream = self._keys.stream_of(letter.delivery)
            resent += cast("int", await self._resend((self._keys.dead, stream), tuple(args)))
        return resent

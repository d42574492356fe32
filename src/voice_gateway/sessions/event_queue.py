"""Where session events wait to be delivered: one small interface, `EventQueue`, and its in-memory
form for one replica and development (the durable one, over Redis Streams, is
event_queue_redis.py).

A `Delivery` is one event for one receiver URL, so a receiver that is down holds back only its
own deliveries. The interface is what a Redis Stream gives: `append` before the action that
caused the event is answered (XADD), `claim` to hand deliveries to this replica's sender
(XREADGROUP, and XAUTOCLAIM for what a dead replica held), `still_ours` before each attempt (in
Redis another replica may have taken the delivery's partition over), `ack` once delivered (XACK),
`dead_letter` once retrying is over (a second stream), `abandon` at shutdown (memory: what is
lost; a stream: nothing, another replica or the restart claims it).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from .events import SessionEvent

MEMORY_QUEUE_SIZE = 10_000  # deliveries pending at once; past it new events are dropped
DEAD_LETTERS_KEPT = 1_000  # the latest dead deliveries, for an operator to look at
SEEN_FOR_S = 3600.0  # the same delivery appended again within this is not queued twice
# In memory, the last this many of those (~5 MB at most): at 1,000 sessions/s the last 20 s,
# which hold the duplicates that come (a webhook and the sweep finding one join, LiveKit's ~15 s
# of retries).
MEMORY_SEEN_KEPT = 20_000


@dataclass(frozen=True)
class Delivery:
    event: SessionEvent
    url: str
    queued_at: float = field(default_factory=time.time)  # wall clock: it may cross replicas

    @property
    def key(self) -> tuple[str, str]:
        return (self.event.id, self.url)


class EventQueueFull(Exception):
    """The queue holds as many deliveries as it may: the event is not queued."""


class EventQueueUnavailable(Exception):
    """The queue's store (Redis) did not take the event: it is not queued."""


STORE_RETRY_S = 2.0  # a failing store is logged once per this, and waited out


class EventQueue(Protocol):
    deduplicates: bool  # the same delivery appended twice is queued once (Redis's `seen` set)

    async def append(self, deliveries: list[Delivery]) -> None:
        """Hold `deliveries` until acknowledged or dead; raises EventQueueFull."""

    async def claim(self) -> list[Delivery]:
        """Deliveries for this replica to send, each handed out once; waits until there are."""

    def still_ours(self, delivery: Delivery) -> bool:
        """Whether this replica may send `delivery` now (False: another replica will)."""

    async def ack(self, delivery: Delivery) -> None: ...

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int = 0) -> None: ...

    async def wait_until_empty(self) -> None:
        """Until nothing this replica holds still needs it (a durable queue: at once)."""

    def abandon(self) -> list[Delivery]:
        """At shutdown: the deliveries that are lost with this process."""

    def depth(self) -> int: ...

    def oldest_queued_at(self) -> float | None: ...


class MemoryEventQueue:
    """Bounded, in this process: what is pending when it stops is lost (counted as dropped)."""

    deduplicates = True  # as Redis's `seen` set, within SEEN_FOR_S and the last MEMORY_SEEN_KEPT

    def __init__(
        self,
        size: int = MEMORY_QUEUE_SIZE,
        seen_kept: int = MEMORY_SEEN_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size, self._seen_kept = size, seen_kept
        self._clock = clock
        self._pending: dict[tuple[str, str], Delivery] = {}  # in the order they were queued
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # key -> when (monotonic)
        self._unclaimed: deque[Delivery] = deque()
        self._arrived = anyio.Event()
        self._emptied = anyio.Event()
        self.dead: deque[tuple[Delivery, str]] = deque(maxlen=DEAD_LETTERS_KEPT)

    async def append(self, deliveries: list[Delivery]) -> None:
        # The same event twice is one delivery, though the first was sent already: a webhook and
        # the sweep finding one join make one event (events.py), which the receiver gets once.
        now = self._clock()
        self._forget_seen_before(now - SEEN_FOR_S)
        # By key: one URL listed twice in VOICE_GATEWAY_EVENTS_URL is one delivery.
        by_key = {d.key: d for d in deliveries if not self._holds(d.key)}
        if len(self._pending) + len(by_key) > self._size:
            raise EventQueueFull(f"{len(self._pending)} deliveries pending")
        for delivery in by_key.values():
            self._seen[delivery.key] = now
            self._pending[delivery.key] = delivery
            self._unclaimed.append(delivery)
        while len(self._seen) > self._seen_kept:
            self._seen.popitem(last=False)
        self._arrived.set()

    def _holds(self, key: tuple[str, str]) -> bool:
        # Pending too: one still retrying may be older than the last MEMORY_SEEN_KEPT seen.
        return key in self._seen or key in self._pending

    def _forget_seen_before(self, cutoff: float) -> None:
        while self._seen and next(iter(self._seen.values())) < cutoff:
            self._seen.popitem(last=False)

    async def claim(self) -> list[Delivery]:
        while not self._unclaimed:
            await self._arrived.wait()
            self._arrived = anyio.Event()
        claimed = list(self._unclaimed)
        self._unclaimed.clear()
        return claimed

    def still_ours(self, delivery: Delivery) -> bool:
        return True  # one process: nobody else could send it

    async def ack(self, delivery: Delivery) -> None:
        self._forget(delivery)

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int = 0) -> None:
        self.dead.append((delivery, error))
        self._forget(delivery)

    async def wait_until_empty(self) -> None:
        while self._pending:
            await self._emptied.wait()
            self._emptied = anyio.Event()

    def abandon(self) -> list[Delivery]:
        lost = list(self._pending.values())
        self._pending.clear()
        self._unclaimed.clear()
        return lost

    def depth(self) -> int:
        return len(self._pending)

    def oldest_queued_at(self) -> float | None:
        oldest = next(iter(self._pending.values()), None)
        return oldest.queued_at if oldest else None

    def _forget(self, delivery: Delivery) -> None:
        self._pending.pop(delivery.key, None)
        if not self._pending:
            self._emptied.set()

"""Session events in Redis, shared by every replica on `VOICE_GATEWAY_REDIS_URL`: the durable
`EventQueue` (event_queue.py).

Keys, all under one hash tag, the room prefix's (a cluster keeps them in one slot, so one script
may touch them all), `voice-gateway:events:{prefix}:` and:
- `stream:0` .. `stream:15`: the deliveries waiting or being sent (one entry per event and
  receiver URL), a session's always in the same partition (event_leases.py); an entry is deleted
  once acknowledged or dead, so their lengths add up to the queue's depth. Each stream has the
  consumer group `delivery`, which every replica reads as a consumer of its own name;
- `lease:0` .. `lease:15` and `replicas`: which replica delivers which partition (event_leases.py);
- `dead`: the dead letters, each with the error that ended its retries (event_dead_letters.py);
- `seen`: a sorted set, delivery key -> when it was appended: the same event appended twice within
  `SEEN_FOR_S` (a LiveKit retry, two replicas hearing one webhook) is one delivery.

- `append` is one script (dedup + XADD), with a deadline, and is NOT fail-open: an event Redis
  did not take raises `EventQueueUnavailable`, for the caller to answer 503.
- `claim` renews this replica's leases, takes over every entry pending in a partition it has just
  taken (XAUTOCLAIM from any consumer: a SIGKILLed replica's, or its own before a restart), and
  reads new entries of the partitions it holds (XREADGROUP over them all, blocking at most
  `BLOCK_S`, never past its leases). A failing Redis is logged once per `STORE_RETRY_S` and waited
  out: the sender never stops.
- `still_ours` is the fence a lane asks before each attempt: False once the delivery's partition
  is no longer this replica's (the entry stays pending, for the new owner to take over).
- `ack` and `dead_letter` are scripts (XACK + XDEL, and XADD to `dead` first). An ack that fails
  is retried on the next claim; failing that the entry is taken over and sent again: at least once.
- `wait_until_empty` returns at once and `abandon` loses nothing: what this replica held is
  another's (or its restart's) once its leases lapse.

Redis keeps all this only as well as it persists: without `appendonly yes` a Redis restart loses
the queue (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
import coredis
from coredis.exceptions import (
    RedisError,
    StreamConsumerGroupError,
    StreamDuplicateConsumerGroupError,
)
from coredis.response.types import StreamEntry

from .event_leases import PARTITIONS, PartitionLeases, partition_of
from .event_queue import SEEN_FOR_S, STORE_RETRY_S, Delivery, EventQueueUnavailable
from .events import SessionEvent

KEY_PREFIX = "voice-gateway:events"
GROUP = "delivery"
STORE_TIMEOUT_S = 0.5  # an append slower than this fails (the caller answers 503)
ROUND_TIMEOUT_S = 2.0  # a claim's calls beside its blocking read must end within this
BLOCK_S = 1.0  # the longest a claim blocks in Redis before it renews its leases
LEASE_S = 30.0  # VOICE_GATEWAY_EVENTS_LEASE_S: a dead replica's partitions are free after it
DEAD_LETTERS_KEPT = 100_000  # approximately (MAXLEN ~)
CLAIM_COUNT = 256  # entries read or taken over per call
TAKE_OVER_CALLS = 8  # XAUTOCLAIM calls per claim: a large backlog is taken over in rounds
FINISHED_KEPT = 10_000  # entry ids acknowledged lately, not to be handed out again
logger = logging.getLogger("voice_gateway.events")  # pinned: logs know it by this name
T = TypeVar("T")
Found = list[tuple[int, StreamEntry]]  # entries, each with its partition


# KEYS: seen, stream 0 .. stream P-1. ARGV: seen_for_s, then per delivery: its key, its
# partition, its field count, its fields. Returns how many entries were added.
_APPEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local seen_for = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - seen_for)
local added, i = 0, 2
while i <= #ARGV do
  local key, partition, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if redis.call('ZADD', KEYS[1], 'NX', now, key) == 1 then
    redis.call('XADD', KEYS[partition + 2], '*', unpack(ARGV, i + 3, i + 2 + n))
    added = added + 1
  end
  i = i + 3 + n
end
redis.call('PEXPIRE', KEYS[1], math.ceil(seen_for * 1000))
return added
"""

# KEYS: stream. ARGV: group, ids...
_ACK = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""

# KEYS: stream, dead. ARGV: group, id, kept, then the dead entry's fields.
_DEAD = """
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""

# KEYS: the streams. Returns {depth, oldest queued_at or ""}: the metrics, in one call.
_MEASURE = """
local depth, oldest = 0, nil
for i = 1, #KEYS do
  depth = depth + redis.call('XLEN', KEYS[i])
  local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)[1]
  if first then
    local fields = first[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'queued_at' then
        local at = tonumber(fields[j + 1])
        if oldest == nil or at < oldest then oldest = at end
      end
    end
  end
end
return {depth, oldest and string.format('%.6f', oldest) or ''}
"""


class RecentIds:
    """The latest `size` ids added: a take-over in flight while a lane acknowledged an entry
    returns that entry once more, and it must not be sent twice."""

    def __init__(self, size: int = FINISHED_KEPT) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, ids: Iterable[str]) -> None:
        for entry_id in ids:
            self._order.append(entry_id)
            self._ids.add(entry_id)
            if len(self._order) > self._size:
                self._ids.discard(self._order.popleft())

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._ids


class EventKeys:
    """The queue's key names for one room prefix."""

    def __init__(self, prefix: str) -> None:
        self.base = f"{KEY_PREFIX}:{{{prefix}}}"
        self.streams = tuple(f"{self.base}:stream:{p}" for p in range(PARTITIONS))
        self.dead, self.seen = f"{self.base}:dead", f"{self.base}:seen"

    def stream_of(self, delivery: Delivery) -> str:
        return self.streams[partition_of(delivery.event.session_id)]


def encode(delivery: Delivery) -> dict[str, str]:
    event = delivery.event
    return {
        "id": event.id,
        "type": event.type,
        "timestamp": event.timestamp.isoformat(),
        "data": json.dumps(event.data, separators=(",", ":")),
        "url": delivery.url,
        "queued_at": repr(delivery.queued_at),
    }


def decode(fields: dict[str, str]) -> Delivery:
    event = SessionEvent(
        fields["id"],
        fields["type"],  # type: ignore[arg-type]  # written by encode() from an EventType
        datetime.fromisoformat(fields["timestamp"]),
        json.loads(fields["data"]),
    )
    return Delivery(event, fields["url"], float(fields["queued_at"]))


def fields_of(entry: StreamEntry) -> dict[str, str]:
    return {str(name): str(value) for name, value in entry.field_values.items()}


def consumer_name() -> str:
    """This process's name in the group: unique, so two replicas never share pending entries."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisEventQueue:
    deduplicates = True  # the `seen` set: the same delivery appended within SEEN_FOR_S is one

    def __init__(
        self,
        client: coredis.Redis[str],
        prefix: str,
        consumer: str,
        *,
        lease_s: float = LEASE_S,
        safety_s: float = 6.0,
        block_s: float = BLOCK_S,
    ) -> None:
        self._client = client
        self.keys = keys = EventKeys(prefix)
        self.consumer = consumer
        self.leases = PartitionLeases(
            client, keys.base, consumer, lease_s=lease_s, safety_s=safety_s
        )
        self._lease_ms = int(lease_s * 1000)
        self._block_ms = int(block_s * 1000)
        self._append = client.register_script(_APPEND)
        self._ack = client.register_script(_ACK)
        self._dead_script = client.register_script(_DEAD)
        self._measure_script = client.register_script(_MEASURE)
        self._held: dict[tuple[str, str], tuple[int, set[str]]] = {}  # key -> partition, ids
        self._unacked: list[tuple[str, list[str]]] = []  # (stream, ids) whose ack failed
        self._finished = RecentIds()
        self._group_ready = False
        self._taking_over: dict[int, tuple[str, int]] = {}  # partition -> cursor, min idle ms
        self._swept_at = time.monotonic()
        self._failing_until = 0.0
        self._depth = 0
        self._oldest: float | None = None

    async def append(self, deliveries: list[Delivery]) -> None:
        args: list[str | float | int] = [SEEN_FOR_S]
        for delivery in deliveries:
            fields = encode(delivery)
            partition = partition_of(delivery.event.session_id)
            args += ["\n".join(delivery.key), partition, 2 * len(fields)]
            for name, value in fields.items():
                args += [name, value]
        try:
            with anyio.fail_after(STORE_TIMEOUT_S):
                await self._append((self.keys.seen, *self.keys.streams), tuple(args))
        except (RedisError, OSError, TimeoutError) as exc:
            raise EventQueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def claim(self) -> list[Delivery]:
        while True:
            claimed = await self._guarded(self._claim_once)
            if claimed:
                return claimed
            if claimed is None:  # Redis failed: wait it out (logged once per window)
                # A read or take-over cut short may have made entries ours that nobody here
                # holds: everything pending in our partitions is taken over again (what a lane
                # holds already is not handed out twice).
                self._taking_over = {p: ("0-0", 0) for p in self.leases.owned}
                await anyio.sleep(STORE_RETRY_S)

    def still_ours(self, delivery: Delivery) -> bool:
        held = self._held.get(delivery.key)
        if held is not None and self.leases.owns(held[0]):
            return True
        self._held.pop(delivery.key, None)  # pending still: the partition's owner takes it over
        return False

    async def ack(self, delivery: Delivery) -> None:
        stream, ids = self._release(delivery)
        if ids and await self._guarded(lambda: self._ack((stream,), (GROUP, *ids))) is None:
            self._unacked.append((stream, ids))

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int = 0) -> None:
        stream, ids = self._release(delivery)
        fields = encode(delivery) | {"error": error, "attempts": str(attempts)}
        for entry_id in ids:  # one, unless the same delivery was queued twice
            args: list[str | int] = [GROUP, entry_id, DEAD_LETTERS_KEPT]
            for name, value in fields.items():
                args += [name, value]
            await self._guarded(partial(self._dead_script, (stream, self.keys.dead), tuple(args)))
            # A failed write leaves the entry pending: taken over, retried once, dead again.

    async def wait_until_empty(self) -> None:
        """Nothing to wait for: what this replica holds is another's once its leases lapse."""

    def abandon(self) -> list[Delivery]:
        self._held.clear()
        return []

    def depth(self) -> int:
        """Over every partition, as of the latest claim (at most `BLOCK_S` ago while Redis
        answers)."""
        return self._depth

    def oldest_queued_at(self) -> float | None:
        return self._oldest

    async def _claim_once(self) -> list[Delivery]:
        if not self._group_ready:
            await self._create_groups()
        while self._unacked:
            stream, ids = self._unacked[-1]
            await self._ack((stream,), (GROUP, *ids))
            self._unacked.pop()
        for partition in await self.leases.renew():  # everything pending in it is ours now
            self._taking_over[partition] = ("0-0", 0)
        if time.monotonic() - self._swept_at >= self._lease_ms / 1000:
            # A backstop: anything pending in a partition of ours and idle a whole lease.
            for partition in self.leases.owned:
                self._taking_over.setdefault(partition, ("0-0", self._lease_ms))
            self._swept_at = time.monotonic()
        found = await self._take_over()
        if not found:
            found = await self._read_new()
        await self._measure()
        return self._hold(found)

    async def _create_groups(self) -> None:
        # From the start: entries appended before any replica read are delivered too. The groups
        # exist already once another replica made them.
        for stream in self.keys.streams:
            with contextlib.suppress(StreamDuplicateConsumerGroupError):
                await self._client.xgroup_create(stream, GROUP, "0", mkstream=True)
        self._group_ready = True

    async def _take_over(self) -> Found:
        """Entries pending in the partitions being taken over, whoever held them: at most
        `TAKE_OVER_CALLS` batches a claim, the rest on the next."""
        found: Found = []
        for _ in range(TAKE_OVER_CALLS):
            owned = self.leases.owned
            for partition in set(self._taking_over) - owned:  # lost again meanwhile
                del self._taking_over[partition]
            if not self._taking_over:
                break
            partition = min(self._taking_over)
            start, min_idle_ms = self._taking_over[partition]
            stream = self.keys.streams[partition]
            answer = await self._client.xautoclaim(
                stream, GROUP, self.consumer, min_idle_ms, start, count=CLAIM_COUNT
            )
            found += [(partition, e) for e in answer[1] if isinstance(e, StreamEntry)]
            if str(answer[0]) == "0-0":
                del self._taking_over[partition]
                await self._forget_consumers_done(stream)
            else:
                self._taking_over[partition] = (str(answer[0]), min_idle_ms)
        return found

    async def _forget_consumers_done(self, stream: str) -> None:
        """Consumers holding nothing here leave the group: every restart is a new name, and the
        group would list them all forever. One alive and reading makes itself again."""
        for consumer in await self._client.xinfo_consumers(stream, GROUP):
            if consumer["name"] != self.consumer and int(consumer["pending"]) == 0:
                await self._client.xgroup_delconsumer(stream, GROUP, consumer["name"])

    async def _read_new(self) -> Found:
        owned = sorted(self.leases.owned)
        # Never blocked past the leases: what is read is read while the partitions are ours.
        block_ms = min(self._block_ms, int(self.leases.valid_for_s() * 1000) - 100)
        if not owned or block_ms <= 0:
            await anyio.sleep(self._block_ms / 1000)
            return []
        streams: dict[Any, Any] = {self.keys.streams[p]: ">" for p in owned}
        answer = await self._client.xreadgroup(
            GROUP, self.consumer, streams, count=CLAIM_COUNT, block=block_ms
        )
        partition = {stream: p for p, stream in enumerate(self.keys.streams)}
        return [(partition[s], e) for s, found in (answer or {}).items() for e in found]

    async def _measure(self) -> None:
        answer = await self._measure_script(self.keys.streams, ())
        depth, oldest = cast("list[str]", answer)
        self._depth = int(depth)
        self._oldest = float(oldest) if oldest else None

    def _hold(self, found: Found) -> list[Delivery]:
        claimed: list[Delivery] = []
        for partition, entry in found:
            if str(entry.identifier) in self._finished:
                continue
            delivery = decode(fields_of(entry))
            _, ids = self._held.setdefault(delivery.key, (partition, set()))
            if not ids:  # a delivery already in a lane here is not handed out twice
                claimed.append(delivery)
            ids.add(str(entry.identifier))
        return claimed

    def _release(self, delivery: Delivery) -> tuple[str, list[str]]:
        partition, ids = self._held.pop(delivery.key, (0, set()))
        self._finished.add(ids)
        return self.keys.streams[partition], sorted(ids)

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call`'s answer, or None when Redis failed (logged once per `STORE_RETRY_S`)."""
        try:
            with anyio.fail_after(self._block_ms / 1000 + ROUND_TIMEOUT_S):
                return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            if isinstance(exc, StreamConsumerGroupError):  # NOGROUP
                self._group_ready = False  # Redis restarted without its data: make them again
            now = time.monotonic()
            if now >= self._failing_until:
                self._failing_until = now + STORE_RETRY_S
                logger.warning(
                    "event queue (Redis) failed (%s: %s); retrying every %g s",
                    type(exc).__name__,
                    exc,
                    STORE_RETRY_S,
                )
            return None


def redis_client(url: str, block_s: float = BLOCK_S) -> coredis.Redis[str]:
    """A client of the queue's own: a claim blocks in Redis for up to `block_s`, longer than the
    slots' client would wait for an answer."""
    return coredis.Redis.from_url(
        url,
        decode_responses=True,
        connect_timeout=STORE_TIMEOUT_S,
        stream_timeout=block_s + ROUND_TIMEOUT_S / 2,
    )


@asynccontextmanager
async def open_redis_event_queue(
    url: str, prefix: str, **options: float
) -> AsyncIterator[RedisEventQueue]:
    client = redis_client(url, options.get("block_s", BLOCK_S))
    try:
        queue = RedisEventQueue(client, prefix, consumer_name(), **options)
        yield queue
        # Its sender has stopped: no send is on the wire, the partitions may go at once.
        with anyio.move_on_after(STORE_TIMEOUT_S), contextlib.suppress(RedisError, OSError):
            await queue.leases.release()
    finally:
        client.connection_pool.disconnect()
        await anyio.lowlevel.checkpoint()  # the transports finish closing on the next turn

"""Which replica delivers which sessions' events: the Redis event queue is split into
`PARTITIONS` streams by session (crc32 of its id), and each partition is delivered by one replica
at a time, the holder of its lease.

Why: two replicas reading one stream can each hold one event of a session, and then deliver that
session's events out of order (one retrying the 4th while the other sends the 5th). With one
owner per partition, a session's events are all in one replica's lanes, which order them.

Every round (each claim, about once a second) one script: heartbeats this replica into the
`replicas` sorted set, counts the live ones, renews the leases it holds up to its fair share
(ceil(PARTITIONS / live replicas)), gives back the rest and takes free ones up to that share.
A lease is a key (`SET NX PX`) holding the owner's consumer name for `lease_s`. Given back, its
value becomes `released` for `release_s`, so nobody takes it while a send started under it may
still be on the wire.

The fence is time: an owner starts a send only until `lease_s - safety_s` after its latest
renewal began, `safety_s` longer than a send may take, so no send of the old owner is in flight
once another replica can take the partition. A replica stopping gives its leases back; one
SIGKILLed loses them after `lease_s`; whoever takes a partition first takes over every entry
pending in it (event_queue_redis.py).
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import cast

import coredis

PARTITIONS = 16  # more than replicas are ever likely to run, few enough to read in one call
logger = logging.getLogger("voice_gateway.events")  # pinned: logs know it by this name

# KEYS: replicas, lease 0 .. lease P-1. ARGV: me, lease_ms, release_ms.
# Returns the partitions this replica holds now.
_LEASE = """
local me, lease_ms, release_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + lease_ms, me)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * lease_ms)
local share = math.ceil((#KEYS - 1) / redis.call('ZCARD', KEYS[1]))
local owned = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == me then
    if #owned < share then
      redis.call('PEXPIRE', KEYS[i], lease_ms)
      owned[#owned + 1] = i - 2
    else
      redis.call('SET', KEYS[i], 'released', 'PX', release_ms)
    end
  end
end
for i = 2, #KEYS do
  if #owned >= share then break end
  if redis.call('SET', KEYS[i], me, 'NX', 'PX', lease_ms) then owned[#owned + 1] = i - 2 end
end
return owned
"""

# KEYS: replicas, lease 0 .. lease P-1. ARGV: me, release_ms. At shutdown: every lease given back.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('SET', KEYS[i], 'released', 'PX', tonumber(ARGV[2]))
  end
end
"""


def partition_of(session_id: str) -> int:
    return zlib.crc32(session_id.encode()) % PARTITIONS


class PartitionLeases:
    def __init__(
        self,
        client: coredis.Redis[str],
        key_prefix: str,
        consumer: str,
        *,
        lease_s: float,
        safety_s: float,
    ) -> None:
        self._keys = (
            f"{key_prefix}:replicas",
            *(f"{key_prefix}:lease:{p}" for p in range(PARTITIONS)),
        )
        self._script = client.register_script(_LEASE)
        self._release_script = client.register_script(_RELEASE)
        self._consumer = consumer
        self._lease_ms = int(lease_s * 1000)
        self._release_ms = int(safety_s * 1000)
        self._valid_for_s = lease_s - safety_s
        self._owned: frozenset[int] = frozenset()
        self._valid_until = 0.0  # monotonic

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this replica may deliver from now (none once its leases lapsed)."""
        return self._owned if time.monotonic() < self._valid_until else frozenset()

    def valid_for_s(self) -> float:
        return max(0.0, self._valid_until - time.monotonic())

    def owns(self, partition: int) -> bool:
        return partition in self.owned

    async def renew(self) -> frozenset[int]:
        """Renew, give back and take leases; the partitions newly this replica's (their pending
        entries are to be taken over). Raises what Redis raises: the leases then lapse."""
        started, before = time.monotonic(), self.owned
        args = (self._consumer, self._lease_ms, self._release_ms)
        answer = await self._script(self._keys, args)
        owned = frozenset(int(p) for p in cast("list[int]", answer))
        self._owned, self._valid_until = owned, started + self._valid_for_s
        if owned != before:
            logger.info("event partitions delivered by this replica: %s", _spans(owned) or "none")
        return owned - before

    async def release(self) -> None:
        """Give every lease back (a replica stopping): the others take its partitions within
        `safety_s`, not `lease_s`. Raises what Redis raises: they then lapse by themselves."""
        self._owned = frozenset()
        await self._release_script(self._keys, (self._consumer, self._release_ms))


def _spans(partitions: frozenset[int]) -> str:
    """`0-3,8` rather than sixteen numbers in a log line."""
    spans: list[list[int]] = []
    for p in sorted(partitions):
        if spans and spans[-1][1] == p - 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)

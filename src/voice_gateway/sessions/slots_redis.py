"""The session slots in Redis, shared by every replica on `VOICE_GATEWAY_REDIS_URL`.

The same rules as `MemorySlots` (slots.py), each operation one Lua script, so a check and its
reservation are atomic across replicas. Four keys, one hash tag (a cluster keeps them in one slot):
- `slots`: a sorted set, session id -> when the slot expires unless a listing refreshes it;
- `held`: a hash, session id -> "hold_until seen_at scope scope..." (tab-separated);
- `counts`: a hash, scope -> live sessions counted in it;
- `ended`: a sorted set, released session id -> until when no listing may count it again.
Times are Redis's own (`TIME`), so replicas' clocks never disagree. Every write also sets the
keys to expire after the lease: once no replica runs, nothing is left behind.

Should Redis fail (down, slow), sessions are admitted without a slot, logged once per
`STORE_RETRY_S`, as the rate limits do: a cap protects capacity, and an outage of its store must
not become an outage of the gateway. The sweep restores the counts once Redis answers again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import coredis
from coredis.commands.script import Script
from coredis.exceptions import RedisError

from ..errors import AdmissionStoreUnavailable
from ..fail_open import FailOpen
from .slots import Check, Counts, Refusal, Slot, SlotTiming

STORE_TIMEOUT_S = 0.5  # a slower Redis costs one request this much, then is skipped
STORE_RETRY_S = 5.0  # how long a failed Redis is skipped before it is asked again
KEY_PREFIX = "voice-gateway:admission"
logger = logging.getLogger("voice_gateway.admission")  # pinned: logs know it by this name
T = TypeVar("T")

# KEYS: slots, held, counts, ended. Shared by every script below.
_COMMON = """
local SLOTS, HELD, COUNTS, ENDED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Times to the microsecond (Lua's own tostring keeps 14 digits: a tenth of a millisecond).
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fields(value)
  local out = {}
  for part in string.gmatch(value, '[^\\t]+') do out[#out + 1] = part end
  return out
end
local function drop(id)
  local value = redis.call('HGET', HELD, id)
  if value then
    local parts = fields(value)
    for i = 3, #parts do
      local left = redis.call('HINCRBY', COUNTS, parts[i], -1)
      if left <= 0 then redis.call('HDEL', COUNTS, parts[i]) end
    end
  end
  redis.call('HDEL', HELD, id)
  redis.call('ZREM', SLOTS, id)
end
local function purge(t)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', SLOTS, '-inf', t)) do drop(id) end
  redis.call('ZREMRANGEBYSCORE', ENDED, '-inf', t)
end
local function add(id, scopes, hold_until, seen_at, expires_at)
  redis.call('ZADD', SLOTS, expires_at, id)
  local times = string.format('%.6f\\t%.6f\\t', hold_until, seen_at)
  redis.call('HSET', HELD, id, times .. scopes)
  for _, scope in ipairs(fields(scopes)) do redis.call('HINCRBY', COUNTS, scope, 1) end
end
local function keep_for(seconds)
  local ms = math.ceil(seconds * 1000)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ms) end
end
"""

# ARGV: id, scopes, grace, lease, then (scope, limit) per check. Returns {"new"}, {"held"} or
# {"refused", the number of the check refused (from 1), its count}.
_RESERVE = (
    _COMMON
    + """
local t = now()
purge(t)
local id, scopes, grace, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('ZSCORE', SLOTS, id) then return {'held'} end
for i = 5, #ARGV, 2 do
  local count = tonumber(redis.call('HGET', COUNTS, ARGV[i]) or '0')
  if count >= tonumber(ARGV[i + 1]) then return {'refused', (i - 3) / 2, count} end
end
redis.call('ZREM', ENDED, id)
add(id, scopes, t + grace, 0, t + lease)
keep_for(lease)
return {'new'}
"""
)

# ARGV: id, lease, and "1" when the session ended (counted from no older listing again).
_RELEASE = (
    _COMMON
    + """
local t = now()
purge(t)
drop(ARGV[1])
if ARGV[3] == '1' then redis.call('ZADD', ENDED, t + tonumber(ARGV[2]), ARGV[1]) end
keep_for(tonumber(ARGV[2]))
return 1
"""
)

# ARGV: listing age, lease, then (id, scopes) per live session of the listing.
_RECONCILE = (
    _COMMON
    + """
local t = now()
purge(t)
local listed, lease = t - tonumber(ARGV[1]), tonumber(ARGV[2])
local shown = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  shown[id] = true
  local value = redis.call('HGET', HELD, id)
  if value then
    local parts = fields(value)
    local seen = math.max(tonumber(parts[2]), listed)
    local scopes = table.concat(parts, '\\t', 3)
    redis.call('HSET', HELD, id, parts[1] .. string.format('\\t%.6f\\t', seen) .. scopes)
    redis.call('ZADD', SLOTS, 'GT', t + lease, id)
  elseif not redis.call('ZSCORE', ENDED, id) then
    add(id, ARGV[i + 1], t, listed, t + lease)
  end
end
local held = redis.call('HGETALL', HELD)
for i = 1, #held, 2 do
  local parts = fields(held[i + 1])
  local hold, seen = tonumber(parts[1]), tonumber(parts[2])
  local gone = (seen == 0 and hold < listed) or (seen > 0 and seen < listed)
  if not shown[held[i]] and gone then drop(held[i]) end
end
keep_for(lease)
return 1
"""
)

_COUNTS = (
    _COMMON
    + """
purge(now())
return redis.call('HGETALL', COUNTS)
"""
)


class RedisSlots:
    def __init__(self, client: coredis.Redis[str], prefix: str, timing: SlotTiming) -> None:
        self._keys = tuple(f"{KEY_PREFIX}:{{{prefix}}}:{name}" for name in _KEY_NAMES)
        self._timing = timing
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)
        self._reconcile = client.register_script(_RECONCILE)
        self._counts = client.register_script(_COUNTS)
        self._redis = FailOpen(
            logger,
            "session-cap store",
            "sessions go uncapped",
            (RedisError, OSError),
            timeout_s=STORE_TIMEOUT_S,
            retry_s=STORE_RETRY_S,
        )

    async def reserve(self, slot: Slot, checks: Sequence[Check]) -> Refusal | bool:
        args: list[str | float] = [slot.session_id, "\t".join(slot.scopes)]
        args += [self._timing.grace_s, self._timing.lease_s]
        for check in checks:
            args += [check.scope, check.limit]
        answer = await self._run(self._reserve, args, ["unknown"])
        if answer[0] == "refused":
            check = checks[int(answer[1]) - 1]
            return Refusal(check.cap, check.limit, int(answer[2]))
        return answer[0] == "new"

    async def release(self, session_id: str) -> None:
        await self._drop(session_id, ended=True)

    async def withdraw(self, session_id: str) -> None:
        await self._drop(session_id, ended=False)

    async def reconcile(self, live: Sequence[Slot], listing_age_s: float) -> None:
        args: list[str | float] = [listing_age_s, self._timing.lease_s]
        for slot in live:
            args += [slot.session_id, "\t".join(slot.scopes)]
        await self._run(self._reconcile, args, None)

    async def counts(self) -> Counts:
        answer = await self._run(self._counts, [], None)
        if answer is None:
            raise AdmissionStoreUnavailable("The session counts (Redis) are unavailable")
        pairs = answer.items() if isinstance(answer, dict) else _pairs(answer)
        return Counts({str(scope): int(count) for scope, count in pairs})

    async def _drop(self, session_id: str, *, ended: bool) -> None:
        args: list[str | float] = [session_id, self._timing.lease_s, "1" if ended else "0"]
        await self._run(self._release, args, None)

    async def _run(self, script: Script[str], args: Sequence[str | float], default: T) -> Any | T:
        """The script's answer, or `default` while Redis fails (logged once per retry window)."""
        return await self._redis.call(lambda: script(self._keys, tuple(args)), default)


_KEY_NAMES = ("slots", "held", "counts", "ended")


def _pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


@asynccontextmanager
async def open_redis_slots(url: str, prefix: str, timing: SlotTiming) -> AsyncIterator[RedisSlots]:
    client: coredis.Redis[str] = coredis.Redis.from_url(
        url,
        decode_responses=True,
        connect_timeout=STORE_TIMEOUT_S,
        stream_timeout=STORE_TIMEOUT_S,
    )
    try:
        yield RedisSlots(client, prefix, timing)
    finally:
        client.connection_pool.disconnect()
        await anyio.lowlevel.checkpoint()  # the transports finish closing on the next turn

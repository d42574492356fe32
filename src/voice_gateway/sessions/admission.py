"""Admission control: session caps over the gateway, per agent and per user, counted in live
sessions (not requests), exact under races.

A new session first *reserves a slot*: its session id counted in its scopes (the gateway, its
agent, its user), refused with `ConcurrencyLimited` when a scope is at its cap. Checking and
reserving is one step with nothing in between (one turn of the event loop in memory, one Lua
script in Redis), so 50 concurrent creates under a cap of 3 admit exactly 3.

LiveKit's room list is the truth the counts answer to. A slot is released by the one path every
end of a session takes (`SessionCloser.close`, for every reason: DELETE, expiry, a time limit,
LiveKit closing the room), and the reaper's sweep, which lists every room anyway, reconciles the
slots against that list each pass:
- a session room LiveKit lists is counted (refreshing its slot, or restoring one a restart or an
  expiry lost);
- a slot whose room a listing has shown before and a later listing does not is dropped: the
  session ended, and the webhook saying so was lost;
- a slot whose room no listing has shown yet is kept for `VOICE_GATEWAY_RESERVATION_GRACE_S`
  (a token endpoint's room only appears on first join), then dropped;
- a slot that no listing refreshes expires after `lease_s`, so a crashed replica's reservations
  go by themselves; a released session is not counted again from a listing made before its end.

A session's id is its slot: reserving an id already held counts nothing, so an idempotent replay
of a live session is neither refused nor counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import anyio

from ..access.caller import Caller, CallerKind
from ..errors import ConcurrencyLimited
from ..ops.metrics import Metrics
from ..settings import Settings
from .record import SessionRecord
from .slots import (
    GATEWAY_SCOPE,
    CapName,
    Check,
    MemorySlots,
    Refusal,
    Slot,
    SlotStore,
    SlotTiming,
    agent_scope,
    user_scope,
)

# A slot frees within seconds of its session's end (the end paths and the webhook release it), so
# asking again sooner is pointless; the count can only tell that slots are taken, not until when.
RETRY_AFTER_S = 5
logger = logging.getLogger("voice_gateway.admission")  # pinned: logs know it by this name


@dataclass(frozen=True)
class SessionCaps:
    gateway: int | None
    per_agent: int | None
    per_user: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionCaps:
        return cls(
            settings.max_sessions, settings.max_sessions_per_agent, settings.max_sessions_per_user
        )

    def checks(self, user_id: str, agent_id: str) -> list[Check]:
        """The caps a session of this user and agent must fit, the narrowest first (its refusal
        names the cap the caller can most likely do something about)."""
        wanted: list[tuple[CapName, str, int | None]] = [
            ("user", user_scope(user_id), self.per_user),
            ("agent", agent_scope(agent_id), self.per_agent if agent_id else None),
            ("gateway", GATEWAY_SCOPE, self.gateway),
        ]
        return [Check(cap, scope, limit) for cap, scope, limit in wanted if limit is not None]


@dataclass(frozen=True)
class CapUsage:
    limit: int | None
    count: int | None  # None: not the caller's to know (a service sees the per-user limit only)


@dataclass(frozen=True)
class Usage:
    gateway: CapUsage
    user: CapUsage
    user_id: str | None  # the end user the user cap's count is for
    agent_limit: int | None
    agent_counts: dict[str, int] | None  # None for an end user: other users' sessions


class Admission:
    """The caps, over a slot store; what the session service and the end paths call."""

    def __init__(self, store: SlotStore, caps: SessionCaps, metrics: Metrics) -> None:
        self._store = store
        self._caps = caps
        self._metrics = metrics

    def admitted(
        self, record: SessionRecord, exists: Callable[[], Awaitable[bool]] | None = None
    ) -> Admitted:
        """A slot for `record` while the block creates its session, released should the block
        fail. `exists`: whether the session is live already (an idempotent replay), asked only
        when a cap refuses it, which then does not."""
        return Admitted(self, record, exists)

    async def release(self, session_id: str) -> None:
        """The session ended: its slot is free for the next one."""
        await self._store.release(session_id)

    async def withdraw(self, session_id: str) -> None:
        """Its create failed: the slot it reserved is free again."""
        await self._store.withdraw(session_id)

    async def reconcile(self, records: Iterable[SessionRecord], listing_age_s: float) -> None:
        """`records`: the live sessions of a room listing made `listing_age_s` ago."""
        await self._store.reconcile([Slot.of(record) for record in records], listing_age_s)

    async def usage(self, caller: Caller) -> Usage:
        counts = await self._store.counts()
        caps = self._caps
        gateway = CapUsage(caps.gateway, counts.of(GATEWAY_SCOPE))
        if caller.kind is CallerKind.END_USER:
            user_id = caller.subject or ""
            own = CapUsage(caps.per_user, counts.of(user_scope(user_id)))
            return Usage(gateway, own, user_id, None, None)
        per_user = CapUsage(caps.per_user, None)
        return Usage(gateway, per_user, None, caps.per_agent, counts.per_agent())

    async def reserve(
        self, record: SessionRecord, exists: Callable[[], Awaitable[bool]] | None
    ) -> bool:
        """A slot for `record` (True: newly counted); ConcurrencyLimited when a cap is full."""
        checks = self._caps.checks(record.user_id, record.agent_id)
        outcome = await self._store.reserve(Slot.of(record), checks)
        if not isinstance(outcome, Refusal):
            return outcome
        if exists is not None and await exists():
            # Live already, though no slot says so (a restart lost it): count it, refuse nothing.
            return await self._store.reserve(Slot.of(record), ()) is True
        self._metrics.sessions_refused.labels(outcome.cap).inc()
        cap, limit = outcome.cap, outcome.limit
        logger.info("session %s refused: the %s cap of %d is full", record.session_id, cap, limit)
        raise ConcurrencyLimited(outcome.cap, outcome.limit, outcome.count, RETRY_AFTER_S)


class Admitted:
    """`Admission.admitted`'s block. A class, not an `asynccontextmanager`, whose generator
    machinery cost 2-3 µs a session (bench/README.md, measured decisions)."""

    def __init__(
        self,
        admission: Admission,
        record: SessionRecord,
        exists: Callable[[], Awaitable[bool]] | None,
    ) -> None:
        self._admission = admission
        self._record = record
        self._exists = exists
        self._new = False  # this block counted the slot, so a failure withdraws it

    async def __aenter__(self) -> None:
        self._new = await self._admission.reserve(self._record, self._exists)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        if error is not None and self._new:
            with anyio.CancelScope(shield=True):  # a cancelled request frees its slot too
                await self._admission.withdraw(self._record.session_id)


@asynccontextmanager
async def open_admission(settings: Settings, metrics: Metrics) -> AsyncIterator[Admission]:
    """The caps over slots in Redis when `VOICE_GATEWAY_REDIS_URL` is set, in memory otherwise."""
    caps, timing = SessionCaps.from_settings(settings), SlotTiming.from_settings(settings)
    if settings.redis_url is None:
        yield Admission(MemorySlots(timing), caps, metrics)
        return
    # Imported only with Redis configured: its client (coredis, and numpy through it) is a
    # third of the start-up time of a gateway without Redis (bench/README.md).
    from .slots_redis import open_redis_slots

    url = settings.redis_url.get_secret_value()
    async with open_redis_slots(url, settings.room_prefix, timing) as store:
        yield Admission(store, caps, metrics)

"""Session slots: which live sessions count against which scopes (the gateway, an agent, a
user), and the one-replica store of them. The rules are admission.py's; `slots_redis.py` keeps
the same slots in Redis for every replica.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..settings import Settings
from .record import SessionRecord

CapName = Literal["gateway", "agent", "user"]
GATEWAY_SCOPE = "gateway"


@dataclass(frozen=True)
class Slot:
    """What a session counts against: its id, and the scopes it is counted in."""

    session_id: str
    scopes: tuple[str, ...]

    @classmethod
    def of(cls, record: SessionRecord) -> Slot:
        return cls(record.session_id, scopes_of(record.user_id, record.agent_id))


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


def agent_scope(agent_id: str) -> str:
    return f"agent:{agent_id}"


def scopes_of(user_id: str, agent_id: str) -> tuple[str, ...]:
    # A token session may dispatch no agent: it counts against no agent's cap.
    agent = (agent_scope(agent_id),) if agent_id else ()
    return (GATEWAY_SCOPE, user_scope(user_id), *agent)


@dataclass(frozen=True)
class Refusal:
    cap: CapName
    limit: int
    count: int


@dataclass(frozen=True)
class Check:
    """One cap a new slot must fit under: the scope counted, and its limit."""

    cap: CapName
    scope: str
    limit: int


def first_refusal(checks: Sequence[Check], count_of: Callable[[str], int]) -> Refusal | None:
    for check in checks:
        count = count_of(check.scope)
        if count >= check.limit:
            return Refusal(check.cap, check.limit, count)
    return None


@dataclass(frozen=True)
class SlotTiming:
    grace_s: float  # a slot no listing has shown yet is kept this long
    lease_s: float  # a slot no listing refreshes expires after this (and a release is this final)

    @classmethod
    def from_settings(cls, settings: Settings) -> SlotTiming:
        # Two sweeps may fail (LiveKit slow or down) before a live session's slot lapses.
        grace = settings.reservation_grace_s or settings.token_ttl_s
        return cls(grace, grace + 3 * settings.reaper_interval_s)


@dataclass(frozen=True)
class Counts:
    """Live sessions per scope, only the scopes that have any."""

    by_scope: dict[str, int]

    def of(self, scope: str) -> int:
        return self.by_scope.get(scope, 0)

    def per_agent(self) -> dict[str, int]:
        prefix = agent_scope("")
        return {s.removeprefix(prefix): n for s, n in self.by_scope.items() if s.startswith(prefix)}


class SlotStore(Protocol):
    async def reserve(self, slot: Slot, checks: Sequence[Check]) -> Refusal | bool:
        """Count `slot` unless a check refuses it: True when newly counted, False when its
        session id was held already (nothing counted)."""

    async def release(self, session_id: str) -> None:
        """The session ended: drop its slot, and count it from no listing made before now."""

    async def withdraw(self, session_id: str) -> None:
        """Its create failed: drop the slot (should the room exist after all, a listing says so)."""

    async def reconcile(self, live: Sequence[Slot], listing_age_s: float) -> None:
        """Bring the slots in line with a room listing made `listing_age_s` ago."""

    async def counts(self) -> Counts: ...


@dataclass
class _Held:
    scopes: tuple[str, ...]
    hold_until: float  # kept until then while no listing has shown its room (grace)
    seen_at: float | None  # when the latest listing that showed its room was made
    expires_at: float  # dropped then, unless a listing shows its room again (lease)

    def gone_by(self, listed_at: float) -> bool:
        """Whether a listing made at `listed_at` that does not show the room proves it gone."""
        if self.seen_at is None:
            return self.hold_until < listed_at
        return self.seen_at < listed_at


class MemorySlots:
    """One replica's slots. Nothing in a method awaits: each runs in one turn of the event loop,
    so a check and its reservation are never split by another request."""

    def __init__(self, timing: SlotTiming, clock: Callable[[], float] = time.monotonic) -> None:
        self._timing = timing
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._counts: Counter[str] = Counter()
        self._ended: dict[str, float] = {}  # released session id -> until when it stays so
        # When each slot and each end may be due, soonest first: a purge looks at what is due,
        # not at every slot (a scan per reservation made creating a session cost O(live slots)).
        self._held_due: list[tuple[float, str]] = []
        self._ended_due: list[tuple[float, str]] = []

    async def reserve(self, slot: Slot, checks: Sequence[Check]) -> Refusal | bool:
        now = self._purged()
        if slot.session_id in self._held:
            return False
        refusal = first_refusal(checks, lambda scope: self._counts[scope])
        if refusal is not None:
            return refusal
        self._ended.pop(slot.session_id, None)  # a new life under a released id
        self._add(slot, _Held(slot.scopes, now + self._timing.grace_s, None, self._lease(now)))
        return True

    async def release(self, session_id: str) -> None:
        now = self._purged()
        self._drop(session_id)
        self._ended[session_id] = until = self._lease(now)
        heapq.heappush(self._ended_due, (until, session_id))

    async def withdraw(self, session_id: str) -> None:
        self._drop(session_id)

    async def reconcile(self, live: Sequence[Slot], listing_age_s: float) -> None:
        now = self._purged()
        listed_at = now - listing_age_s
        for slot in live:
            if slot.session_id not in self._ended:
                self._saw(slot, listed_at, now)
        shown = {slot.session_id for slot in live}
        for session_id, held in list(self._held.items()):
            if session_id not in shown and held.gone_by(listed_at):
                self._drop(session_id)

    async def counts(self) -> Counts:
        self._purged()
        return Counts({scope: n for scope, n in self._counts.items() if n > 0})

    def _saw(self, slot: Slot, listed_at: float, now: float) -> None:
        held = self._held.get(slot.session_id)
        if held is None:
            self._add(slot, _Held(slot.scopes, now, listed_at, self._lease(now)))
            return
        held.seen_at = max(held.seen_at or listed_at, listed_at)
        held.expires_at = max(held.expires_at, self._lease(now))

    def _add(self, slot: Slot, held: _Held) -> None:
        self._held[slot.session_id] = held
        self._counts.update(held.scopes)
        heapq.heappush(self._held_due, (held.expires_at, slot.session_id))

    def _drop(self, session_id: str) -> None:
        held = self._held.pop(session_id, None)
        if held is not None:
            self._counts.subtract(held.scopes)

    def _purged(self) -> float:
        """Now, once the slots and end marks whose time is up are gone."""
        now = self._clock()
        while self._held_due and self._held_due[0][0] <= now:
            _, session_id = heapq.heappop(self._held_due)
            held = self._held.get(session_id)
            if held is not None and held.expires_at <= now:
                self._drop(session_id)
            elif held is not None:  # a listing extended it since: due later
                heapq.heappush(self._held_due, (held.expires_at, session_id))
        while self._ended_due and self._ended_due[0][0] <= now:
            _, session_id = heapq.heappop(self._ended_due)
            if self._ended.get(session_id, now + 1) <= now:
                del self._ended[session_id]
        return now

    def _lease(self, now: float) -> float:
        return now + self._timing.lease_s

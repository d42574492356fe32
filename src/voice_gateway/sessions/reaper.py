"""The sweep: every `VOICE_GATEWAY_REAPER_INTERVAL_S` a background task of the app's lifespan
lists LiveKit's rooms once and, from that one list, makes certain what webhooks make prompt:

- ends expired sessions (reason `expired`): a token's TTL does not end a live session (LiveKit
  refreshes connected clients' tokens), so the gateway ends it;
- deletes rooms a join re-created after their session was ended (endings.py);
- notes a user's join or leave that LiveKit's count shows but no webhook reported
  (user_presence.py), and checks on agents that are overdue by what was observed (agent_watch.py),
  ending those sessions (`agent_failed`); what it finds unreported is sent as the event the lost
  webhook would have made;
- ends a session whose room LiveKit closed since the last pass without its `room_finished`
  reaching the gateway (no end mark), for the reason the room's timeouts name (lifecycle.py);
- reconciles the session caps' slots against that same list (admission.py).

It only ever touches rooms whose name and metadata make them the gateway's (`record_of`), and it is
safe with several replicas running it at once: a session ends once, whoever ends it (closer.py).
One session's failure, even a bug's, is logged and the pass goes on with the others: a session
that failed every pass must not keep the rest (ending the vanished ones among them) from being
done.
"""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime

import anyio

from ..errors import GatewayError
from ..livekit import api
from ..livekit.rooms import RoomNotFound
from ..ops.metrics import Metrics
from ..vocabulary import end_mark_room_name, is_session_room_name
from . import endings
from .endings import EndReason
from .lifecycle import reason_livekit_closed, started_at
from .record import SessionRecord, record_of
from .service import SessionService
from .user_presence import follow_user

Sessions = dict[str, tuple[api.Room, SessionRecord]]
FOLLOW_UPS_AT_ONCE = 8  # sessions whose follow-up asks LiveKit, at a time
RECHECK_EVERY = 10  # passes between two looks at an agent seen in its room (5 min at 30 s)

logger = logging.getLogger("voice_gateway.reaper")  # pinned: logs know it by this name


class ExpiryReaper:
    def __init__(self, sessions: SessionService, metrics: Metrics) -> None:
        self._sessions = sessions
        self._rooms = sessions.rooms
        self._admission = sessions.admission  # the session caps, reconciled against every listing
        self._prefix = sessions.prefix
        self._metrics = metrics
        # The sessions the last pass saw: one gone since without an end mark was closed by
        # LiveKit with its webhook lost, and is ended here instead.
        self._last_seen: dict[str, tuple[api.Room, SessionRecord]] = {}
        self._passes = 0

    async def sweep(self) -> int:
        """One pass: the number of expired sessions this pass ended."""
        listed_at = anyio.current_time()
        try:
            rooms = await self._rooms.list_all()
        except GatewayError as exc:
            self._metrics.reaper_sweeps.labels("failed").inc()
            logger.warning("expiry reaper could not list rooms: %s", exc.detail)
            return 0
        # Ended before and re-created by a join since: not a second end of the session.
        revived = endings.revived_room_names(rooms, self._prefix)
        for room_name in revived:
            await endings.delete_revived(self._rooms, self._metrics, room_name, "sweep")
        live = {room.name: (room, record) for room, record in self._of_sessions(rooms)}
        listing_age = anyio.current_time() - listed_at
        await self._admission.reconcile(
            [record for name, (_, record) in live.items() if name not in revived], listing_age
        )
        ended = await self._end_expired(live, revived)
        await self._follow_up(live, revived)
        await self._end_vanished(live, {room.name for room in rooms})
        self._last_seen = live
        self._metrics.reaper_sweeps.labels("ok").inc()
        return ended

    def _of_sessions(self, rooms: list[api.Room]) -> list[tuple[api.Room, SessionRecord]]:
        sessions = []
        for room in rooms:
            if not is_session_room_name(room.name, self._prefix):
                continue
            record = record_of(room.name, room.metadata, self._prefix)
            if record is not None:
                sessions.append((room, record))
        return sessions

    async def _end_expired(self, live: Sessions, revived: set[str]) -> int:
        ended, now = 0, datetime.now(UTC)
        for room_name, (_, record) in live.items():
            if room_name not in revived and record.has_expired(now):
                ended += await self._end(record, "expired")
        return ended

    async def _follow_up(self, live: Sessions, revived: set[str]) -> None:
        """What webhooks may have missed: a user LiveKit counts, an agent overdue or gone. A few
        sessions at a time, so a slow LiveKit does not stretch a pass past its next one: that
        many followers share one list, rather than a task per live session (tens of thousands
        of tasks a pass, with that many sessions)."""
        self._passes += 1
        now = datetime.now(UTC)
        due = [
            (room, record)
            for room_name, (room, record) in live.items()
            if room_name not in revived and not record.has_expired(now)
        ]
        next_due = iter(due)  # one for all followers: each takes the next session not taken

        async def follow() -> None:
            for room, record in next_due:
                await self._follow_up_one(room, record)

        async with anyio.create_task_group() as followers:
            for _ in range(min(FOLLOW_UPS_AT_ONCE, len(due))):
                followers.start_soon(follow)

    async def _follow_up_one(self, room: api.Room, record: SessionRecord) -> None:
        watch = self._sessions.agent_watch
        try:
            record = await follow_user(self._sessions, room, record)
            await watch.check_if_due(record, started_at(room))
            if _recheck_due(record, self._passes):
                await watch.check_still_there(record, started_at(room))
        except GatewayError as exc:
            logger.warning("could not follow up session %s: %s", record.session_id, exc.detail)
        except Exception:  # a bug in one session's follow-up: the pass goes on with the rest
            logger.exception("following up session %s failed", record.session_id)

    async def _end_vanished(self, live: Sessions, listed: set[str]) -> None:
        for room_name, (_, record) in self._last_seen.items():
            mark = end_mark_room_name(self._prefix, record.session_id)
            if room_name not in live and mark not in listed:
                reason = reason_livekit_closed(record, datetime.now(UTC))
                await self._end(record, reason, room_gone=True)

    async def _end(self, record: SessionRecord, reason: EndReason, room_gone: bool = False) -> int:
        try:
            ended_here = await self._sessions.closer.close(record, reason, room_gone=room_gone)
        except RoomNotFound:
            logger.debug("session %s was already gone", record.session_id)
            return 0
        except GatewayError as exc:
            logger.warning(
                "could not end session %s (%s): %s", record.session_id, reason, exc.detail
            )
            return 0
        except Exception:  # a bug in one session's end: the pass goes on (the next pass retries)
            logger.exception("ending session %s (%s) failed", record.session_id, reason)
            return 0
        return int(ended_here)


def _recheck_due(record: SessionRecord, passes: int) -> bool:
    # Each session whose agent was seen in the room is asked about once every RECHECK_EVERY
    # passes (spread by its id): its participant_left may have been lost.
    observed = record.observed
    present = observed.agent_joined_at is not None and observed.agent_left_at is None
    spread = zlib.crc32(record.session_id.encode())
    return present and spread % RECHECK_EVERY == passes % RECHECK_EVERY


async def sweep_forever(reaper: ExpiryReaper, interval_s: float) -> None:
    """One pass every `interval_s`, until the lifespan's task group cancels it (mid-call too)."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await reaper.sweep()
        except Exception:  # one bad pass must not end enforcement for the process's lifetime
            logger.exception("expiry reaper pass failed")

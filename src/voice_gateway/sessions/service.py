"""SessionService: creates sessions, issues token-endpoint tokens, reads and ends sessions.

It knows nothing of HTTP. Every method takes the `Caller` it acts for and checks ownership itself,
through the one rule in `access/caller.py`, so no path can forget it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import anyio.abc

from ..access.caller import Caller, CallerKind, require_may_act_for
from ..errors import (
    AgentTimeout,
    AgentUnavailable,
    EventsUnavailable,
    FieldError,
    Forbidden,
    GatewayError,
    SessionNotFound,
)
from ..ids import new_identity, new_session_id
from ..livekit import api
from ..livekit.clients import LiveKit
from ..livekit.join_tokens import JoinGrant, PendingToken
from ..livekit.rooms import RoomNotFound
from ..ops.metrics import Metrics
from ..settings import Settings
from ..vocabulary import end_mark_room_name, session_id_named_by
from . import endings, events, idempotency, lifecycle, listing, time_limits
from .admission import Admission
from .agent_wait import AgentArrivals, AgentWait, JoinedAgent, WaitedSession
from .agent_watch import AgentWatch
from .closer import SessionCloser
from .event_outbox import EventOutbox
from .events import FailureReason
from .lifecycle import SessionState
from .listing import SessionFilter, SessionPage
from .observations import Observations
from .record import SessionRecord, now_to_the_second, record_of, session_lifetime
from .room_config import check_agent_allowed
from .time_limits import livekit_timeout
from .token_plan import TokenAsk, plan_token_session

logger = logging.getLogger("voice_gateway.service")  # pinned: logs know it by this name

# A failed create's clean-up: at once, then backing off; ~30 s in all, past a LiveKit restart.
CLEAN_UP_PAUSES_S = (0, 0.5, 1, 2, 4, 8, 16)
CLEAN_UP_AT_EXIT_S = 2.0


@dataclass(frozen=True)
class CreatedSession:
    record: SessionRecord
    room_name: str
    token: str
    livekit_url: str
    agent: JoinedAgent | None = None  # when the create waited for it


@dataclass(frozen=True)
class IssuedToken:
    record: SessionRecord
    room_name: str
    token: str
    livekit_url: str
    participant_name: str


@dataclass(frozen=True)
class SessionDetails:
    record: SessionRecord
    room: api.Room
    participants: list[api.ParticipantInfo]
    state: SessionState


@dataclass(frozen=True)
class SessionAsk:
    """What `POST /api/voice/session` asked for, validated."""

    user_id: str
    agent_id: str
    duration_hours: float
    idempotency_key: str | None = None
    wait_for_agent: bool = False


class SessionService:
    def __init__(
        self,
        settings: Settings,
        livekit: LiveKit,
        background: anyio.abc.TaskGroup,
        metrics: Metrics,
        admission: Admission,
        outbox: EventOutbox,
    ) -> None:
        self._settings = settings
        self.outbox = self._outbox = outbox
        self._prefix = self.prefix = settings.room_prefix
        self._metrics = metrics
        self._rooms = rooms = livekit.rooms
        self._dispatches = livekit.dispatches
        self._signer = livekit.join_tokens
        self._background = background
        self._session_ids = idempotency.SessionIds(settings.livekit_api_secret)
        self.rooms = rooms
        self.admission = self._admission = admission
        self.closer = SessionCloser(
            rooms, self._prefix, metrics, settings.token_ttl_s, admission, outbox
        )
        self.observations = Observations(rooms, self._prefix)
        self.arrivals = AgentArrivals()
        self._agent_wait = AgentWait(rooms, self._dispatches.list_dispatch, self.arrivals)
        self.agent_watch = AgentWatch(
            rooms,
            self.observations,
            self.closer,
            settings.agent_join_timeout_s,
            self._prefix,
            outbox,
        )

    async def create_session(self, caller: Caller, ask: SessionAsk) -> CreatedSession:
        require_may_act_for(caller, ask.user_id, "user_id")
        check_agent_allowed(ask.agent_id, self._settings.allowed_agents, "agent_id")
        if ask.idempotency_key is None:
            record = plan_session(ask)
            async with self._admission.admitted(record):
                created = await self._create(record)
        else:
            key_scope = idempotency.scope_of(caller)
            session_id = self._session_ids.session_id(key_scope, ask.idempotency_key)
            created = await self._create_idempotently(plan_session(ask, session_id))
        if not ask.wait_for_agent:
            return created
        return replace(created, agent=await self._agent_of(created.record))

    async def _agent_of(self, record: SessionRecord) -> JoinedAgent:
        """The agent, once in the room; if it fails or does not come in time the session ends."""
        wait_s = self._settings.agent_wait_s
        try:
            with anyio.fail_after(wait_s):
                return await self._agent_wait.until_joined(self._waited(record))
        except TimeoutError:
            await self._fail(record, "agent_timeout")
            detail = f"The agent {record.agent_id!r} did not join within {wait_s:g} s"
            raise AgentTimeout(f"{detail}; the session was ended") from None
        except AgentUnavailable:
            await self._fail(record, "agent_unavailable")
            raise

    async def _fail(self, record: SessionRecord, reason: FailureReason) -> None:
        # Before the end: the app learns why the create failed, then that the session ended.
        room_name = record.room_name(self._prefix)
        failure = events.failed(record, room_name, reason, datetime.now(UTC))
        await self._outbox.emit_settled(failure)  # the caller's error is the agent's, not Redis's
        await self.closer.close(record, "agent_failed")

    async def issue_token(self, caller: Caller, ask: TokenAsk) -> IssuedToken:
        """A join token whose room LiveKit creates on first join; no call to LiveKit."""
        identity = ask.identity or new_identity()  # a service that names nobody: a fresh one
        require_may_act_for(caller, identity, "participant_identity")
        _require_may_name_room(caller, ask.room_name)
        now = now_to_the_second()
        planned = plan_token_session(ask, self._settings, now, identity)
        grant = JoinGrant(
            identity,
            planned.room_name,
            planned.room_config,
            now,
            now + timedelta(seconds=self._settings.token_ttl_s),
            name=ask.name,
            metadata=ask.metadata,
            attributes=ask.attributes,
        )
        # Held from now: the room only appears when someone joins (see admission.py).
        async with self._admission.admitted(planned.record):
            token = await self._signer.sign(grant)
        self._metrics.tokens_issued.inc()
        url = self._settings.client_livekit_url
        return IssuedToken(planned.record, planned.room_name, token, url, ask.name)

    async def get_session(self, caller: Caller, room_name: str) -> SessionDetails:
        found = await self._find_session(caller, room_name)
        participants, dispatches = await self._participants_and_dispatches(found.record)
        state = lifecycle.state_now(found.record, participants, dispatches, found.ending)
        return SessionDetails(found.record, found.room, participants, state)

    async def list_sessions(self, caller: Caller, wanted: SessionFilter) -> SessionPage:
        """A page of the sessions `caller` may see, from one ListRooms (listing.py)."""
        if wanted.cursor:
            listing.decode_cursor(wanted.cursor)  # a bad cursor is the caller's error, not a call
        rooms = await self._rooms.list_all()
        return listing.page_of(rooms, self._prefix, caller, wanted)

    async def end_session(self, caller: Caller, room_name: str) -> None:
        record = (await self._find_session(caller, room_name)).record
        await self.closer.close(record, "deleted")

    def _waited(self, record: SessionRecord) -> WaitedSession:
        room_name, mark_name = (
            record.room_name(self._prefix),
            end_mark_room_name(self._prefix, record.session_id),
        )
        return WaitedSession(room_name, mark_name, record.agent_id)

    async def _create(self, record: SessionRecord) -> CreatedSession:
        room_config = self._room_config(record)
        # Signed while LiveKit creates the room: the token is there when LiveKit answers.
        signing = self._signer.start(self._grant_for(record, room_config, record.created_at))
        await self._create_room_or_clean_up(room_config)
        token = await self._token_or_clean_up(signing, room_config.name)
        await self._announce_or_clean_up(record, room_config.name)
        self._metrics.sessions_created.inc()
        self.agent_watch.watch(record, record.created_at)
        return self._created(record, token)

    async def _create_idempotently(self, planned: SessionRecord) -> CreatedSession:
        record, first = await idempotency.claim(self._rooms, self._prefix, planned)
        # A replay of a live session holds its slot already; should no slot say so, the room does.
        async with self._admission.admitted(record, partial(self._is_live, record)):
            return await self._create_claimed(record, first)

    async def _create_claimed(self, record: SessionRecord, first: bool) -> CreatedSession:
        room_config = self._room_config(record)
        # A repeat gets a token issued now, not when the session was created.
        issued_at = record.created_at if first else now_to_the_second()
        # No clean-up on failure here: the caller retries with the same key, into this room.
        signing = self._signer.start(self._grant_for(record, room_config, issued_at))
        room = await self._rooms.create(create_room_request(room_config))
        idempotency.check_created(room, self._prefix, record)
        token = await signing.token()
        (self._metrics.sessions_created if first else self._metrics.idempotent_replays).inc()
        # A replay is the same session, announced when it was created; but with a queue whose
        # `seen` makes the second one nothing (both do), a create that failed to announce it (503,
        # Redis) is retried with its key, and then the replay must. Past the queue's memory of it
        # (memory: the last 20,000 deliveries) a replay announces it again, under the same id.
        if self._outbox.on and (first or self._outbox.deduplicates):
            await self._outbox.emit(events.created(record, room_config.name))
        self.agent_watch.watch(record, record.created_at)
        return self._created(record, token)

    async def _is_live(self, record: SessionRecord) -> bool:
        room = await self._rooms.find(record.room_name(self._prefix))
        found = record_of(room.name, room.metadata, self._prefix) if room else None
        # As created: what was seen of the session since (observed) is in the room, not the claim.
        return found is not None and found.as_created() == record

    def _grant_for(
        self, record: SessionRecord, room_config: api.RoomConfiguration, issued_at: datetime
    ) -> JoinGrant:
        return JoinGrant(
            record.user_id, room_config.name, room_config, issued_at, record.expires_at
        )

    def _created(self, record: SessionRecord, token: str) -> CreatedSession:
        room_name = record.room_name(self._prefix)
        return CreatedSession(record, room_name, token, self._settings.client_livekit_url)

    def _room_config(self, record: SessionRecord) -> api.RoomConfiguration:
        lifetime_s = time_limits.lifetime_s(record)
        return api.RoomConfiguration(
            name=record.room_name(self._prefix),
            empty_timeout=livekit_timeout(self._settings.user_join_timeout_s, lifetime_s),
            departure_timeout=livekit_timeout(self._settings.solo_timeout_s, lifetime_s),
            metadata=record.to_metadata(),
            agents=[
                api.RoomAgentDispatch(
                    agent_name=record.agent_id, metadata=record.dispatch_metadata()
                )
            ],
        )

    async def _create_room_or_clean_up(self, config: api.RoomConfiguration) -> None:
        try:
            await self._rooms.create(create_room_request(config))
        except (GatewayError, anyio.get_cancelled_exc_class()):
            # A deadline or a cancelled request may still have created the room on LiveKit's
            # side. Delete it in the background, so the caller's error is not delayed by it.
            self._clean_up_later(config.name, partial(self._delete_quietly, config.name))
            raise

    async def _token_or_clean_up(self, signing: PendingToken, room_name: str) -> str:
        try:
            return await signing.token()
        except BaseException:
            # The room is there: without its token no one can use it (nor see it end).
            self._clean_up_later(room_name, partial(self._delete_quietly, room_name))
            raise

    async def _announce_or_clean_up(self, record: SessionRecord, room_name: str) -> None:
        """session.created in the queue, or the session undone: the app must not hold a session
        whose events would be lost (Redis did not take the first: 503, and the room goes)."""
        if not self._outbox.on:
            return
        try:
            await self._outbox.emit(events.created(record, room_name))
        except EventsUnavailable:
            self._clean_up_later(room_name, partial(self._withdraw, record, room_name))
            raise

    def _clean_up_later(
        self, room_name: str, clean_up: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """`clean_up()` in the background; once the service has stopped (a request cancelled
        past the shutdown's grace), a line naming the room left, which no one can join (no
        token was given): LiveKit closes it at its empty_timeout."""
        try:
            self._background.start_soon(clean_up)
        except RuntimeError:  # anyio's "This task group is not active"
            logger.warning("stopped before the clean-up of room %s; LiveKit closes it", room_name)

    async def _withdraw(self, record: SessionRecord, room_name: str) -> None:
        """A session never announced is not ended to the app either: marked ended first, so the
        room_finished of its room's delete finds it over (and emits no session.ended)."""
        try:
            await endings.mark_ended(
                self._rooms, self._prefix, record, self._settings.token_ttl_s, "deleted"
            )
        except GatewayError as exc:
            logger.info("could not mark withdrawn session %s (%s)", record.session_id, exc.detail)
        await self._delete_quietly(room_name)

    async def _delete_quietly(self, room_name: str) -> None:
        """Delete a room a failed create may have made. LiveKit down right after CreateRoom must
        not leave a room with an agent dispatched into it: retried, backing off, for ~30 s."""
        for pause_s in CLEAN_UP_PAUSES_S:
            await anyio.sleep(pause_s)
            try:
                await self._rooms.delete(room_name)
                logger.info("room %s of a failed create deleted", room_name)
                return
            except RoomNotFound:
                logger.debug("no room %s to clean up", room_name)
                return
            except GatewayError as exc:
                logger.info("clean-up of room %s failed (%s); trying again", room_name, exc.detail)
        logger.warning("gave up cleaning up room %s; LiveKit closes it unjoined", room_name)

    async def _find_session(self, caller: Caller, room_name: str) -> FoundSession:
        """The session in `room_name`, and whether it is ending: its end mark was made (in the
        same ListRooms), or it has expired, and its room is still there."""
        session_id = session_id_named_by(room_name, self._prefix)
        if session_id is None:
            raise SessionNotFound(f"No session is held in room {room_name!r}")
        found = await self._rooms.find_many(
            [room_name, end_mark_room_name(self._prefix, session_id)]
        )
        room = found.get(room_name)
        record = record_of(room_name, room.metadata, self._prefix) if room else None
        if room is None or record is None:
            raise SessionNotFound(f"No session is held in room {room_name!r}")
        # Only now: a room that is not one of our sessions stays a 404 for everyone.
        require_may_act_for(caller, record.user_id)
        marked = room_name in endings.revived_room_names(list(found.values()), self._prefix)
        return FoundSession(record, room, marked or record.has_expired(now_to_the_second()))

    async def _participants_and_dispatches(
        self, record: SessionRecord
    ) -> tuple[list[api.ParticipantInfo], list[api.AgentDispatch]]:
        room_name = record.room_name(self._prefix)
        dispatches: list[api.AgentDispatch] = []

        async def read_dispatches() -> None:
            dispatches.extend(await self._dispatches.list_dispatch(room_name))

        async with anyio.create_task_group() as reads:
            if record.agent_id:  # a token session may have asked for no agent
                reads.start_soon(read_dispatches)
            participants = await self._rooms.participants(room_name)
        return participants, dispatches


@dataclass(frozen=True)
class FoundSession:
    record: SessionRecord
    room: api.Room
    ending: bool


def _require_may_name_room(caller: Caller, asked: str | None) -> None:
    # Joining a named room would need LiveKit to tell whose session it is; the token endpoint
    # makes no call to LiveKit, so only callers trusted with every session may name one.
    if asked is not None and caller.kind is CallerKind.END_USER:
        problem = FieldError("room_name", "may not be chosen by an end user")
        raise Forbidden("An end user may not choose the room", field_errors=[problem])


def plan_session(ask: SessionAsk, session_id: str | None = None) -> SessionRecord:
    created_at = now_to_the_second()
    return SessionRecord(
        session_id=session_id or new_session_id(),
        user_id=ask.user_id,
        agent_id=ask.agent_id,
        created_at=created_at,
        expires_at=created_at + session_lifetime(ask.duration_hours),
    )


def create_room_request(config: api.RoomConfiguration) -> api.CreateRoomRequest:
    """The same room set-up as the token carries, so either way of creating the room agrees."""
    return api.CreateRoomRequest(
        name=config.name,
        empty_timeout=config.empty_timeout,
        departure_timeout=config.departure_timeout,
        metadata=config.metadata,
        agents=list(config.agents),
    )


@asynccontextmanager
async def open_session_service(
    settings: Settings,
    livekit: LiveKit,
    metrics: Metrics,
    admission: Admission,
    outbox: EventOutbox,
) -> AsyncIterator[SessionService]:
    """The service, with a task group of its own for clean-ups that outlive a request."""
    async with anyio.create_task_group() as background:
        yield SessionService(settings, livekit, background, metrics, admission, outbox)
        # Clean-ups under way get a moment to finish; retries past it would hold the shutdown.
        background.cancel_scope.deadline = anyio.current_time() + CLEAN_UP_AT_EXIT_S

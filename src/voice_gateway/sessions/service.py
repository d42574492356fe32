"""SessionService: plans, creates, inspects and ends voice sessions. Knows nothing of HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import anyio.abc
from livekit import api

from ..errors import (
    FieldError,
    Forbidden,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    SessionEnded,
    SessionNotFound,
)
from ..livekit.join_tokens import JoinGrant, TokenSigner
from ..livekit.rooms import LiveKitRooms, RoomNotFound, open_livekit_rooms
from ..livekit.webhooks import ReceivedEvent, WebhookInbox
from ..ops.metrics import Metrics
from ..settings import Settings
from . import idempotency
from .reaper import ExpiryReaper
from .record import (
    SessionRecord,
    is_session_room_name,
    new_session_id,
    now_to_the_second,
    record_of,
    session_lifetime,
)
from .token_plan import TokenAsk, plan_token_session

logger = logging.getLogger("voice_gateway.service")  # pinned: logs know it by this name
# Whether the caller may act for a user id; the HTTP layer passes `Caller.may_act_for`.
MayActFor = Callable[[str], bool]


def anyone(user_id: str) -> bool:
    return True


@dataclass(frozen=True)
class CreatedSession:
    record: SessionRecord
    room_name: str
    token: str
    livekit_url: str


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


@dataclass(frozen=True)
class Idempotency:
    """An `Idempotency-Key` and the caller it belongs to (keys of different callers never meet)."""

    caller: str
    key: str


class SessionService:
    def __init__(
        self,
        settings: Settings,
        rooms: LiveKitRooms,
        signer: TokenSigner,
        background: anyio.abc.TaskGroup,
        metrics: Metrics,
        webhooks: WebhookInbox,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._rooms = rooms
        self._signer = signer
        self._background = background
        self._webhooks = webhooks
        self._reaper = ExpiryReaper(rooms, settings.room_prefix, metrics)
        self._session_ids = idempotency.SessionIds(settings.livekit_api_secret)

    @property
    def signer(self) -> TokenSigner:
        return self._signer

    async def create_session(
        self,
        user_id: str,
        agent_id: str,
        duration_hours: float,
        idempotent: Idempotency | None = None,
    ) -> CreatedSession:
        self._check_agent_allowed(agent_id)
        if idempotent is None:
            return await self._create(plan_session(user_id, agent_id, duration_hours))
        session_id = self._session_ids.session_id(idempotent.caller, idempotent.key)
        planned = plan_session(user_id, agent_id, duration_hours, session_id)
        return await self._create_idempotently(planned)

    async def issue_token(self, ask: TokenAsk) -> IssuedToken:
        """A join token whose room LiveKit creates on first join; no call to LiveKit."""
        now = now_to_the_second()
        planned = plan_token_session(ask, self._settings, now)
        grant = JoinGrant(
            ask.identity,
            planned.room_name,
            planned.room_config,
            now,
            now + timedelta(seconds=self._settings.token_ttl_s),
            name=ask.name,
            metadata=ask.metadata,
            attributes=ask.attributes,
        )
        token = await self._signer.sign(grant)
        self._metrics.tokens_issued.inc()
        url = self._settings.client_livekit_url
        return IssuedToken(planned.record, planned.room_name, token, url, ask.name)

    async def get_session(self, room_name: str, may_act_for: MayActFor = anyone) -> SessionDetails:
        record, room = await self._find_session(room_name, may_act_for)
        participants = await self._rooms.participants(room_name)
        return SessionDetails(record, room, participants)

    async def end_session(self, room_name: str, may_act_for: MayActFor = anyone) -> None:
        record, _ = await self._find_session(room_name, may_act_for)
        # Before the room goes: should marking fail, the session still stands and DELETE can be
        # retried; the other way round, a replay could recreate the room in between.
        await self._end_claim(record)
        try:
            await self._rooms.delete(room_name)
        except RoomNotFound:
            logger.info("session room %s was already gone when deleted", room_name)
        self._metrics.sessions_ended.labels("deleted").inc()

    async def end_expired_sessions(self) -> int:
        return await self._reaper.sweep()

    async def receive_webhook(self, body: bytes, authorization: str | None) -> ReceivedEvent:
        return await self._webhooks.receive(body, authorization)

    async def check_livekit(self) -> None:
        await self._rooms.check_access()

    def _check_agent_allowed(self, agent_id: str) -> None:
        allowed = self._settings.allowed_agents
        if allowed and agent_id not in allowed:
            problem = FieldError("agent_id", "is not an agent this gateway dispatches")
            raise InvalidRequest("Unknown agent_id", field_errors=[problem])

    async def _create(self, record: SessionRecord) -> CreatedSession:
        room_config = self._room_config(record)
        token = await self._sign_for(record, room_config, record.created_at)
        await self._create_room_or_clean_up(room_config)
        self._metrics.sessions_created.inc()
        return self._created(record, token)

    async def _create_idempotently(self, planned: SessionRecord) -> CreatedSession:
        record, first = await self._claim(planned)
        room_config = self._room_config(record)
        # A repeat gets a token issued now, not when the session was created.
        issued_at = record.created_at if first else now_to_the_second()
        # No clean-up on failure here: the caller retries with the same key, into this room.
        token = await self._sign_for(record, room_config, issued_at)
        room = await self._rooms.create(create_room_request(room_config))
        if record_of(room.name, room.metadata, self._settings.room_prefix) != record:
            raise IdempotencyConflict(
                "The session this Idempotency-Key names holds another request"
            )
        (self._metrics.sessions_created if first else self._metrics.idempotent_replays).inc()
        return self._created(record, token)

    async def _claim(self, planned: SessionRecord) -> tuple[SessionRecord, bool]:
        """The request first made with this key, and whether that first request is this one."""
        now = now_to_the_second()
        ours = idempotency.Claim(idempotency_claim=planned)
        request = api.CreateRoomRequest(
            name=idempotency.claim_room_name(self._settings.room_prefix, planned.session_id),
            metadata=ours.model_dump_json(),
            empty_timeout=idempotency.claim_empty_timeout(planned, now),
        )
        stored = idempotency.stored_claim((await self._rooms.create(request)).metadata)
        record = stored.idempotency_claim if stored else None
        if record is None or not idempotency.same_request(record, planned):
            raise IdempotencyConflict("This Idempotency-Key was used with a different request")
        if stored is not None and stored.ended:
            raise SessionEnded(
                "The session this Idempotency-Key created was ended; "
                "use a new key for a new session"
            )
        if record.has_expired(now):
            raise IdempotencyConflict("The session this Idempotency-Key created has ended")
        return record, stored is not None and stored.nonce == ours.nonce

    async def _end_claim(self, record: SessionRecord) -> None:
        """Mark the session's idempotency claim ended, so a replay of its key cannot revive it."""
        if record.source != "session":
            return  # token sessions are never claimed
        name = idempotency.claim_room_name(self._settings.room_prefix, record.session_id)
        # No claim room: created without an Idempotency-Key, or closed: there is nothing to replay.
        with suppress(RoomNotFound):
            await self._rooms.update_metadata(name, idempotency.ended_claim(record))

    async def _sign_for(
        self, record: SessionRecord, room_config: api.RoomConfiguration, issued_at: datetime
    ) -> str:
        grant = JoinGrant(
            record.user_id, room_config.name, room_config, issued_at, record.expires_at
        )
        return await self._signer.sign(grant)

    def _created(self, record: SessionRecord, token: str) -> CreatedSession:
        room_name = record.room_name(self._settings.room_prefix)
        return CreatedSession(record, room_name, token, self._settings.client_livekit_url)

    def _room_config(self, record: SessionRecord) -> api.RoomConfiguration:
        return api.RoomConfiguration(
            name=record.room_name(self._settings.room_prefix),
            empty_timeout=self._settings.empty_timeout_s,
            departure_timeout=self._settings.departure_timeout_s,
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
            self._background.start_soon(self._delete_quietly, config.name)
            raise

    async def _delete_quietly(self, room_name: str) -> None:
        try:
            await self._rooms.delete(room_name)
        except (RoomNotFound, GatewayError):
            logger.debug("no room %s to clean up", room_name)

    async def _find_session(
        self, room_name: str, may_act_for: MayActFor
    ) -> tuple[SessionRecord, api.Room]:
        prefix = self._settings.room_prefix
        if not is_session_room_name(room_name, prefix):
            raise SessionNotFound(f"No session is held in room {room_name!r}")
        room = await self._rooms.find(room_name)
        record = record_of(room_name, room.metadata, prefix) if room else None
        if room is None or record is None:
            raise SessionNotFound(f"No session is held in room {room_name!r}")
        # Only now: a room that is not one of our sessions stays a 404 for everyone.
        if not may_act_for(record.user_id):
            raise Forbidden("This session belongs to another user")
        return record, room


def plan_session(
    user_id: str, agent_id: str, duration_hours: float, session_id: str | None = None
) -> SessionRecord:
    created_at = now_to_the_second()
    return SessionRecord(
        session_id=session_id or new_session_id(),
        user_id=user_id,
        agent_id=agent_id,
        created_at=created_at,
        expires_at=created_at + session_lifetime(duration_hours),
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
    settings: Settings, metrics: Metrics
) -> AsyncIterator[SessionService]:
    """What the service needs for the app's lifetime: one pool to LiveKit, one thread limiter."""
    limiter = anyio.CapacityLimiter(settings.thread_limit)
    metrics.watch_thread_limiter(limiter)
    signer = TokenSigner(settings.livekit_api_key, settings.livekit_api_secret, limiter)
    webhooks = WebhookInbox(
        settings.livekit_api_key,
        settings.livekit_api_secret,
        limiter,
        settings.room_prefix,
        metrics,
    )
    async with (
        open_livekit_rooms(settings, limiter, metrics) as rooms,
        anyio.create_task_group() as background,
    ):
        yield SessionService(settings, rooms, signer, background, metrics, webhooks)

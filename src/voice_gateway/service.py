"""SessionService: plans, creates, inspects and ends voice sessions. Knows nothing of HTTP."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.abc
from livekit import api

from .concurrently import both
from .errors import FieldError, Forbidden, GatewayError, InvalidRequest, SessionNotFound
from .livekit_rooms import LiveKitRooms, RoomNotFound, open_livekit_rooms
from .metrics import Metrics
from .session_record import SessionRecord, is_session_room_name, new_session_id, record_of
from .settings import Settings
from .tokens import JoinGrant, TokenSigner

logger = logging.getLogger(__name__)
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
class SessionDetails:
    record: SessionRecord
    room: api.Room
    participants: list[api.ParticipantInfo]


class SessionService:
    def __init__(
        self,
        settings: Settings,
        rooms: LiveKitRooms,
        signer: TokenSigner,
        background: anyio.abc.TaskGroup,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._rooms = rooms
        self._signer = signer
        self._background = background

    @property
    def signer(self) -> TokenSigner:
        return self._signer

    async def create_session(
        self, user_id: str, agent_id: str, duration_hours: float
    ) -> CreatedSession:
        self._check_agent_allowed(agent_id)
        record = plan_session(user_id, agent_id, duration_hours)
        room_name = record.room_name(self._settings.room_prefix)
        room_config = self._room_config(room_name, record)
        grant = JoinGrant(user_id, room_name, room_config, record.created_at, record.expires_at)
        # Neither needs the other: signing in a worker thread overlaps LiveKit's round trip.
        token, _ = await both(self._signer.sign(grant), self._create_room_or_clean_up(room_config))
        self._metrics.sessions_created.inc()
        return CreatedSession(record, room_name, token, self._settings.client_livekit_url)

    async def get_session(self, room_name: str, may_act_for: MayActFor = anyone) -> SessionDetails:
        record, room = await self._find_session(room_name, may_act_for)
        participants = await self._rooms.participants(room_name)
        return SessionDetails(record, room, participants)

    async def end_session(self, room_name: str, may_act_for: MayActFor = anyone) -> None:
        await self._find_session(room_name, may_act_for)
        try:
            await self._rooms.delete(room_name)
        except RoomNotFound:
            logger.info("session room %s was already gone when deleted", room_name)
        self._metrics.sessions_ended.labels("deleted").inc()

    async def check_livekit(self) -> None:
        await self._rooms.check_access()

    def _check_agent_allowed(self, agent_id: str) -> None:
        allowed = self._settings.allowed_agents
        if allowed and agent_id not in allowed:
            problem = FieldError("agent_id", "is not an agent this gateway dispatches")
            raise InvalidRequest("Unknown agent_id", field_errors=[problem])

    def _room_config(self, room_name: str, record: SessionRecord) -> api.RoomConfiguration:
        dispatch_metadata = json.dumps({"session_id": record.session_id, "user_id": record.user_id})
        return api.RoomConfiguration(
            name=room_name,
            empty_timeout=self._settings.empty_timeout_s,
            departure_timeout=self._settings.departure_timeout_s,
            metadata=record.to_metadata(),
            agents=[api.RoomAgentDispatch(agent_name=record.agent_id, metadata=dispatch_metadata)],
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


def plan_session(user_id: str, agent_id: str, duration_hours: float) -> SessionRecord:
    # Whole seconds: a JWT's exp has no finer resolution, and expires_at must equal it.
    created_at = datetime.now(UTC).replace(microsecond=0)
    lifetime = timedelta(seconds=max(1, math.ceil(duration_hours * 3600)))
    return SessionRecord(
        session_id=new_session_id(),
        user_id=user_id,
        agent_id=agent_id,
        created_at=created_at,
        expires_at=created_at + lifetime,
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
    """Everything the service needs for the app's lifetime: one LiveKitAPI, one thread limiter."""
    limiter = anyio.CapacityLimiter(settings.thread_limit)
    metrics.watch_thread_limiter(limiter)
    signer = TokenSigner(settings.livekit_api_key, settings.livekit_api_secret, limiter)
    async with (
        open_livekit_rooms(settings, limiter, metrics) as rooms,
        anyio.create_task_group() as background,
    ):
        yield SessionService(settings, rooms, signer, background, metrics)

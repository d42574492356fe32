"""`/api/voice/session`: create, inspect and end a voice session."""

from __future__ import annotations

from datetime import UTC, datetime

from livekit import api
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...access.caller import caller_of, fill_own_identity, require_may_act_for
from ...sessions import idempotency
from ...sessions.service import Idempotency, SessionDetails
from ..models import ParticipantView, SessionCreated, SessionRequest, SessionView
from ..request_input import read_json_object, room_name_of, validate_as
from ..responses import NO_STORE, model_response
from ..state import app_state


async def create_session(request: Request) -> Response:
    caller = caller_of(request)
    data = await read_json_object(request)
    fill_own_identity(caller, data, "user_id")
    context = {"max_session_hours": app_state(request)["settings"].max_session_hours}
    body = validate_as(SessionRequest, data, context)
    require_may_act_for(caller, body.user_id, "user_id")
    created = await app_state(request)["sessions"].create_session(
        body.user_id, body.agent_id, body.session_duration_hours, idempotency_of(request)
    )
    response = SessionCreated(
        session_id=created.record.session_id,
        room_name=created.room_name,
        token=created.token,
        livekit_url=created.livekit_url,
        expires_at=created.record.expires_at,
    )
    return model_response(response, 201, NO_STORE)


async def get_session(request: Request) -> Response:
    may_act_for = caller_of(request).may_act_for
    details = await app_state(request)["sessions"].get_session(room_name_of(request), may_act_for)
    return model_response(session_view(details))


async def end_session(request: Request) -> Response:
    may_act_for = caller_of(request).may_act_for
    await app_state(request)["sessions"].end_session(room_name_of(request), may_act_for)
    return Response(status_code=204)


def idempotency_of(request: Request) -> Idempotency | None:
    key = request.headers.get(idempotency.HEADER)
    if key is None:
        return None
    caller = caller_of(request)
    # Who the caller is scopes the key: two callers' equal keys are unrelated.
    scope = f"{caller.kind.value}:{caller.subject or caller.key_id or ''}"
    return Idempotency(scope, idempotency.checked_key(key))


def session_view(details: SessionDetails) -> SessionView:
    record = details.record
    return SessionView(
        session_id=record.session_id,
        room_name=details.room.name,
        user_id=record.user_id,
        agent_id=record.agent_id,
        created_at=record.created_at,
        expires_at=record.expires_at,
        room_sid=details.room.sid,
        num_participants=len(details.participants),
        participants=[participant_view(p) for p in details.participants],
    )


def participant_view(participant: api.ParticipantInfo) -> ParticipantView:
    joined = participant.joined_at_ms / 1000 or participant.joined_at
    return ParticipantView(
        identity=participant.identity,
        name=participant.name,
        state=api.ParticipantInfo.State.Name(participant.state),
        kind=api.ParticipantInfo.Kind.Name(participant.kind),
        joined_at=datetime.fromtimestamp(joined, UTC) if joined else None,
    )


routes = [
    Route("/api/voice/session", create_session, methods=["POST"]),
    Route("/api/voice/session/{room_name}", get_session, methods=["GET"]),
    Route("/api/voice/session/{room_name}", end_session, methods=["DELETE"]),
]

"""`/api/voice/session`: create, inspect and end a voice session."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.responses import Response

from ...access.caller import fill_own_identity
from ...livekit import api
from ...sessions import idempotency
from ...sessions.lifecycle import SessionState, reported_join_time
from ...sessions.listing import SessionFilter
from ...sessions.record import SessionRecord
from ...sessions.service import SessionAsk, SessionDetails
from ..endpoint import Endpoint
from ..middleware.access import caller_of
from ..models import (
    AgentView,
    JoinedAgent,
    ParticipantView,
    SessionCreated,
    SessionList,
    SessionListQuery,
    SessionRequest,
    SessionSummary,
    SessionView,
    UserView,
)
from ..openapi import BODY, IDEMPOTENCY_KEY, LIVEKIT, NO_STORE_HEADER, Operation
from ..request_input import query_of, read_json_object, room_name_of, validate_as
from ..responses import NO_STORE, model_response
from ..state import GatewayRequest


async def create_session(request: GatewayRequest) -> Response:
    caller = caller_of(request)
    data = await read_json_object(request)
    fill_own_identity(caller, data, "user_id")
    context = {"max_session_hours": request.state["settings"].max_session_hours}
    body = validate_as(SessionRequest, data, context)
    ask = SessionAsk(
        body.user_id,
        body.agent_id,
        body.session_duration_hours,
        _key_of(request),
        body.wait_for_agent,
    )
    created = await request.state["sessions"].create_session(caller, ask)
    agent = created.agent
    response = SessionCreated(
        session_id=created.record.session_id,
        room_name=created.room_name,
        token=created.token,
        livekit_url=created.livekit_url,
        expires_at=created.record.expires_at,
        agent=JoinedAgent(identity=agent.identity, joined_at=agent.joined_at) if agent else None,
    )
    # Without wait_for_agent, the answer is what it always was: no `agent` at all.
    return model_response(response, 201, NO_STORE, exclude_none=True)


async def get_session(request: GatewayRequest) -> Response:
    sessions = request.state["sessions"]
    details = await sessions.get_session(caller_of(request), room_name_of(request))
    return model_response(session_view(details))


async def list_sessions(request: GatewayRequest) -> Response:
    query = validate_as(SessionListQuery, query_of(request))
    wanted = SessionFilter(query.user_id, query.agent_id, query.status, query.limit, query.cursor)
    page = await request.state["sessions"].list_sessions(caller_of(request), wanted)
    summaries = [
        SessionSummary(**summary_fields(listed.record, listed.room_name, listed.state))
        for listed in page.sessions
    ]
    return model_response(SessionList(sessions=summaries, next_cursor=page.next_cursor))


async def end_session(request: GatewayRequest) -> Response:
    await request.state["sessions"].end_session(caller_of(request), room_name_of(request))
    return Response(status_code=204)


def _key_of(request: GatewayRequest) -> str | None:
    return idempotency.key_of(request.headers.getlist(idempotency.HEADER))


def session_view(details: SessionDetails) -> SessionView:
    return SessionView(
        **summary_fields(details.record, details.room.name, details.state),
        room_sid=details.room.sid,
        num_participants=len(details.participants),
        participants=[participant_view(p) for p in details.participants],
    )


def summary_fields(record: SessionRecord, room_name: str, state: SessionState) -> dict[str, Any]:
    agent = state.agent
    return {
        "session_id": record.session_id,
        "room_name": room_name,
        "user_id": record.user_id,
        "agent_id": record.agent_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "status": state.status,
        "agent": AgentView(**asdict(agent)) if agent else None,
        "user": UserView(**asdict(state.user)),
    }


def participant_view(participant: api.ParticipantInfo) -> ParticipantView:
    return ParticipantView(
        identity=participant.identity,
        name=participant.name,
        state=enum_name(api.ParticipantInfo.State, participant.state),
        kind=enum_name(api.ParticipantInfo.Kind, participant.kind),
        joined_at=reported_join_time(participant),
    )


def enum_name(enum: Any, value: int) -> str:
    """The name the locked livekit-protocol knows, else the number: LiveKit adds values (the
    kinds SIP, AGENT, CONNECTOR and BRIDGE each came later) before our lock does."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


ENDPOINTS = (
    Endpoint(
        create_session,
        Operation(
            "post",
            "/api/voice/session",
            "Create a voice session: room, agent dispatch, token",
            201,
            SessionCreated,
            SessionRequest,
            (*BODY, 403, 409, 429, *LIVEKIT),
            ok_headers=NO_STORE_HEADER,
            header_params=(IDEMPOTENCY_KEY,),
        ),
    ),
    Endpoint(
        get_session,
        Operation(
            "get",
            "/api/voice/session/{room_name}",
            "The session held in a room",
            200,
            SessionView,
            problems=(403, 404, 422, *LIVEKIT),
            path_params=("room_name",),
        ),
    ),
    Endpoint(
        list_sessions,
        Operation(
            "get",
            "/api/voice/sessions",
            "Live sessions, newest first, filtered and paged (an end user's own only)",
            200,
            SessionList,
            problems=(422, *LIVEKIT),
            query_model=SessionListQuery,
        ),
    ),
    Endpoint(
        end_session,
        Operation(
            "delete",
            "/api/voice/session/{room_name}",
            "End a session: delete its room",
            204,
            None,
            problems=(403, 404, 422, *LIVEKIT),
            path_params=("room_name",),
        ),
    ),
)

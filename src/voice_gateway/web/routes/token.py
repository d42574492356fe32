"""`POST /api/voice/token`: LiveKit's standard token endpoint, for `TokenSource.endpoint(url)`.

The wire format is LiveKit's `TokenSourceRequest` / `TokenSourceResponse` in snake_case (what the
JS SDK sends and what Swift can decode), answered with 201 as LiveKit's docs ask.
"""

from __future__ import annotations

from starlette.responses import Response

from ...access.caller import fill_own_identity
from ...sessions.room_config import parse_room_config
from ...sessions.token_plan import TokenAsk
from ..endpoint import Endpoint
from ..middleware.access import caller_of
from ..models import TokenIssued, TokenRequest
from ..openapi import BODY, NO_STORE_HEADER, Operation
from ..request_input import read_json_object, validate_as
from ..responses import NO_STORE, model_response
from ..state import GatewayRequest


async def issue_token(request: GatewayRequest) -> Response:
    caller = caller_of(request)
    data = await read_json_object(request)
    fill_own_identity(caller, data, "participant_identity")
    context = {"max_client_metadata_bytes": request.state["settings"].max_client_metadata_bytes}
    body = validate_as(TokenRequest, data, context)
    ask = TokenAsk(
        identity=body.participant_identity,
        room_config=parse_room_config(body.room_config),
        room_name=body.room_name,
        name=body.participant_name or "",
        metadata=body.participant_metadata or "",
        attributes=body.participant_attributes or {},
    )
    issued = await request.state["sessions"].issue_token(caller, ask)
    response = TokenIssued(
        server_url=issued.livekit_url,
        participant_token=issued.token,
        room_name=issued.room_name,
        participant_name=issued.participant_name,
    )
    return model_response(response, 201, NO_STORE)


ENDPOINTS = (
    Endpoint(
        issue_token,
        Operation(
            "post",
            "/api/voice/token",
            "LiveKit's standard token endpoint, for TokenSource.endpoint(url)",
            201,
            TokenIssued,
            TokenRequest,
            (*BODY, 403, 429),
            ok_headers=NO_STORE_HEADER,
            request_required=False,  # TokenSource sends {} or nothing when given no options
            description="No call to LiveKit: the room is created on first join from the token's "
            "room configuration, which dispatches the agent and records the session. Without "
            "`room_name`, every call gets a fresh room.",
        ),
    ),
)
